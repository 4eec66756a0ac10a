-- spec.suspend stops every Instagram call (refresh, subscription, sends);
-- incoming webhooks are still recorded.
obj.spec.suspend = true
return obj
