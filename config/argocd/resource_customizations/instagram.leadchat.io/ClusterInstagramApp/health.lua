-- Health of a ClusterInstagramApp. The controller follows the kstatus
-- conventions: Ready is True when the app's Secret holds the needed keys,
-- Stalled is True when only a human can fix it (Secret or key missing).
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

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end

-- Not Ready and not Stalled: the controller is still retrying (the API
-- server could not be read), so the outcome is open.
hs.status = "Progressing"
hs.message = "Waiting for the app credentials to be checked"
local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" and reconciling.message ~= nil then
  hs.message = reconciling.message
elseif ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
end
return hs
