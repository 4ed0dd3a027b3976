-- Argo CD health of a WebAppScaling (webappscaler.io/v1alpha1). First match wins:
--   spec.paused                                                  -> Suspended
--   Stalled True, GoldenImageReady False, MetricsAvailable False -> Degraded, with that condition's message
--     (the operator writes Unknown, not False, for a golden image still importing and for no VM to read yet)
--   no status, status.observedGeneration behind metadata.generation,
--   Reconciling True, Ready not True                             -> Progressing
--   otherwise                                                    -> Healthy
-- Argo CD runs a script of argocd-cm with only the base, table and package libraries (and a safe os):
-- no string library, so this script uses nothing but ==, <, .., tostring and ipairs.
local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- a condition's message, or a text naming it when the operator wrote none: never an empty message
local function says(c, fallback)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c.reason ~= nil and c.reason ~= "" then
    return fallback .. " (" .. c.reason .. ")"
  end
  return fallback
end

local hs = {}
if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "spec.paused is true: the operator takes no scale action"
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = says(stalled, "the operator cannot make progress without a person")
  return hs
end
local golden = condition("GoldenImageReady")
if golden ~= nil and golden.status == "False" then
  hs.status = "Degraded"
  hs.message = says(golden, "the golden image cannot be cloned")
  return hs
end
local metrics = condition("MetricsAvailable")
if metrics ~= nil and metrics.status == "False" then
  hs.status = "Degraded"
  hs.message = says(metrics, "no session agent answered")
  return hs
end

hs.status = "Progressing"
if obj.status == nil then
  hs.message = "waiting for the operator's first status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  local seen = "the status has no observedGeneration"
  if observed ~= nil then
    seen = "the status is of generation " .. tostring(observed)
  end
  hs.message = "the operator has not observed generation " .. tostring(generation) .. " yet: " .. seen
  return hs
end
local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = says(reconciling, "the operator is working towards the spec")
  return hs
end
local ready = condition("Ready")
if ready == nil or ready.status ~= "True" then
  if ready == nil then
    hs.message = "no Ready condition yet"
  else
    hs.message = says(ready, "not Ready")
  end
  return hs
end

hs.status = "Healthy"
hs.message = ready.message or ""
return hs
