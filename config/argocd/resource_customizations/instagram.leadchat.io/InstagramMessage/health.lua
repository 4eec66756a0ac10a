-- Health of an InstagramMessage, from status.phase: a message is a one-way
-- trip (Pending -> Sending -> Sent -> Read, or Failed; Received and Deleted
-- for incoming ones), which the phase says more plainly than conditions.
local hs = {}

local generation = obj.metadata.generation or 0
if obj.status == nil or (obj.status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. generation
  return hs
end

local phase = obj.status.phase or ""
local detail = obj.status.message
if detail == nil or detail == "" then
  detail = phase
end

if phase == "Sent" or phase == "Read" or phase == "Received" or phase == "Deleted" then
  -- Deleted is the customer unsending: the object records it faithfully.
  hs.status = "Healthy"
  hs.message = detail
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = detail
  if obj.status.reason ~= nil and obj.status.reason ~= "" then
    hs.message = obj.status.reason .. ": " .. detail
  end
elseif phase == "Pending" or phase == "Sending" or phase == "" then
  hs.status = "Progressing"
  hs.message = detail
  if phase == "" then
    hs.message = "Waiting for the message to be picked up"
  end
else
  -- A phase added after this script was written: say so rather than guess.
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase
end
return hs
