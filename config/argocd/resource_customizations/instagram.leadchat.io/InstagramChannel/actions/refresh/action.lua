-- The controller reconciles whenever this annotation changes, checks the
-- token, account and webhook subscription against Instagram, and echoes the
-- value to status.lastHandledReconcileAt, so a fresh timestamp both asks for
-- the check and shows when it was done.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["instagram.leadchat.io/requestedAt"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
