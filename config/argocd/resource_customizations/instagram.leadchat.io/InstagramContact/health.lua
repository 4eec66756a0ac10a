-- Health of an InstagramContact: Healthy once its profile is known; a
-- profile only the customer can unlock (no consent yet, blocked, deleted)
-- is Suspended, not Degraded: nothing is broken and nothing to fix here;
-- Progressing while the manager is still at it.
local hs = {}

local generation = obj.metadata.generation or 0
if obj.status == nil or (obj.status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the manager to observe generation " .. generation
  return hs
end

local ready, stalled
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "Stalled" and c.status == "True" then
      stalled = c
    end
  end
end

local function describe(c)
  local m = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    m = m .. ": " .. c.message
  end
  return m
end

if stalled ~= nil then
  hs.status = "Suspended"
  hs.message = describe(stalled)
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
elseif ready ~= nil then
  hs.status = "Progressing"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  hs.message = "Waiting for the manager to fetch the profile"
end
return hs
