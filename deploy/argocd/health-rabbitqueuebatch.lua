-- Argo CD health check for rabbitbatch.io/RabbitQueueBatch (argocd-cm key
-- resource.customizations.health.rabbitbatch.io_RabbitQueueBatch; see README.md here).
--
--   Progressing  the operator has not yet reported on this generation of the spec
--                (status.observedGeneration != metadata.generation), or Ready is not True yet;
--   Degraded     Degraded=True: the batch failed or conflicts (message from that condition);
--   Healthy      Ready=True for the current generation.
--
-- A stale status (an older generation) is Progressing even if it said Degraded: the operator has
-- a newer spec to apply and will report on it.
local hs = {}

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the rabbitbatch operator to reconcile the batch"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the rabbitbatch operator to apply generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions
local degraded = condition(conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = text(degraded, "Degraded")
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = text(ready, "Waiting for the Ready condition")
return hs
