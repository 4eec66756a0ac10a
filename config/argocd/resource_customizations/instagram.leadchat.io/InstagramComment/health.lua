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
