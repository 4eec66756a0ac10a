-- Health of an InstagramChannel. The controller follows the kstatus
-- conventions: Ready summarises, Stalled=True means only a human can help.
local hs = {}

local function condition(name)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == name then
      return c
    end
  end
  return nil
end

-- A status older than the spec describes a previous intent, whatever it says.
local generation = obj.metadata.generation or 0
if obj.status == nil or (obj.status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. generation
  return hs
end

local ready = condition("Ready")

if obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Reconciliation is suspended"
  if ready ~= nil and ready.reason == "Suspended" then
    hs.message = ready.message
  end
  return hs
end

-- The controller marks a channel without a token Stalled, but waiting for
-- someone to log in is the normal first step of Business Login, not a
-- failure: show it as paused on a person, with where to go.
if ready ~= nil and ready.status == "False" and ready.reason == "AwaitingAuthorization" then
  hs.status = "Suspended"
  hs.message = ready.message
  if obj.status.authorizationURL ~= nil and obj.status.authorizationURL ~= "" then
    hs.message = "Open " .. obj.status.authorizationURL .. " to connect the Instagram account"
  end
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end

-- Ready False or Unknown without Stalled: the controller retries on its own
-- (app not there yet, refresh backing off, rate limited).
hs.status = "Progressing"
hs.message = "Waiting for the channel to become Ready"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
end
return hs
