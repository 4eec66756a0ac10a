-- Health of an InstagramComment: the receiver records it and marks it Ready
-- for the generation it observed; a removal reported by Meta is recorded
-- faithfully and stays Healthy.
local hs = {}

local generation = obj.metadata.generation or 0
if obj.status == nil or (obj.status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the receiver to record generation " .. generation
  return hs
end

local function describe(c)
  local m = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    m = m .. ": " .. c.message
  end
  return m
end

-- What a workload asked of the comment (spec.hidden, spec.publicReply,
-- spec.delete) is applied by the manager, which reports Synced (and
-- Stalled when only a person can help).
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Stalled" and c.status == "True" then
      hs.status = "Degraded"
      hs.message = describe(c)
      return hs
    end
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Synced" and c.status ~= "True" then
      hs.status = "Progressing"
      hs.message = describe(c)
      return hs
    end
  end
end

if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      if c.status == "True" then
        hs.status = "Healthy"
      else
        hs.status = "Degraded"
      end
      hs.message = c.reason or ""
      if c.message ~= nil and c.message ~= "" then
        hs.message = hs.message .. ": " .. c.message
      end
      return hs
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for the receiver to record the comment"
return hs
