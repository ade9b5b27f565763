-- Argo CD health check for the Tollgate kinds (gateway.tollgate.dev):
-- LLMProvider, Route, VirtualKey and MCPTool. One script serves all four;
-- argocd-cm.yaml installs it under each kind's key. Argo CD evaluates it
-- with `obj` set to the live object and reads the returned table.
--
--   Degraded     Accepted or ResolvedRefs is False for the current generation:
--                the spec is invalid or names something that does not exist,
--                and waiting will not fix it; or Programmed is False with
--                reason Rejected (a data-plane replica refused the routing
--                table and serves its previous one). LLMProvider and MCPTool are also
--                Degraded when Ready but their upstream does not answer
--                (Healthy=False).
--   Suspended    VirtualKey only: in effect but refusing requests on purpose
--                (spec.disabled, or its budget is spent until the next period).
--   Healthy      Ready=True and every condition describes metadata.generation.
--   Progressing  anything else: no status yet, status about an older
--                generation, or accepted but not yet programmed into every
--                data-plane replica.
--
-- Keep in step with docs/gitops.md; test/argocd runs this file (and the
-- copies in argocd-cm.yaml) against realistic status objects.

local hs = {}

local function describe(c)
  local text = c.type .. "=" .. tostring(c.status)
  if c.reason ~= nil and c.reason ~= "" then
    text = text .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the Tollgate controller to report status"
  return hs
end

-- A condition is current when it was written for this generation. Each
-- condition carries observedGeneration; status.observedGeneration is the
-- fallback for conditions without it.
local statusGeneration = obj.status.observedGeneration
local function current(c)
  if generation == nil then
    return true
  end
  local observed = c.observedGeneration
  if observed == nil or observed == 0 then
    observed = statusGeneration
  end
  return observed ~= nil and observed == generation
end

local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  if c.type ~= nil then
    conditions[c.type] = c
  end
end

-- Permanent problems first: a False Accepted or ResolvedRefs for this
-- generation will not heal by waiting.
for _, t in ipairs({ "Accepted", "ResolvedRefs" }) do
  local c = conditions[t]
  if c ~= nil and c.status == "False" and current(c) then
    hs.status = "Degraded"
    hs.message = describe(c)
    return hs
  end
end

-- A data-plane replica refused the routing table holding this generation
-- (it keeps serving its previous one): also not healed by waiting.
local programmed = conditions["Programmed"]
if programmed ~= nil and programmed.status == "False" and programmed.reason == "Rejected" and current(programmed) then
  hs.status = "Degraded"
  hs.message = describe(programmed)
  return hs
end

local ready = conditions["Ready"]
if ready == nil or not current(ready) then
  hs.status = "Progressing"
  local seen = "nothing yet"
  if ready ~= nil and ready.observedGeneration ~= nil then
    seen = "generation " .. tostring(ready.observedGeneration)
  elseif statusGeneration ~= nil then
    seen = "generation " .. tostring(statusGeneration)
  end
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation) .. " (status describes " .. seen .. ")"
  return hs
end

if ready.status ~= "True" then
  if obj.kind == "VirtualKey" and ready.reason == "BudgetExceeded" then
    hs.status = "Suspended"
    hs.message = describe(ready)
    return hs
  end
  -- Not ready for a transient reason: usually Programmed is still pending
  -- (data-plane replicas have not all acknowledged the routing table).
  hs.status = "Progressing"
  if programmed ~= nil and programmed.status ~= "True" and current(programmed) then
    hs.message = describe(programmed)
  else
    hs.message = describe(ready)
  end
  return hs
end

-- Ready=True for this generation.
if obj.kind == "LLMProvider" or obj.kind == "MCPTool" then
  local healthy = conditions["Healthy"]
  if healthy ~= nil and healthy.status == "False" then
    hs.status = "Degraded"
    hs.message = "Ready, but the upstream is unhealthy: " .. describe(healthy)
    return hs
  end
end

if obj.kind == "VirtualKey" then
  if obj.spec ~= nil and obj.spec.disabled == true then
    hs.status = "Suspended"
    hs.message = "Disabled: requests with this key are refused (spec.disabled)"
    return hs
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.reason == "BudgetExceeded" and current(c) then
      hs.status = "Suspended"
      hs.message = describe(c)
      return hs
    end
  end
end

hs.status = "Healthy"
if ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
else
  hs.message = "Ready"
end
return hs
