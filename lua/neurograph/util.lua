-- Pure-Lua helpers of the neurograph module (ng.util): formatting for scripts, examples and debugging.
-- Loaded by luaopen_neurograph with (module name, module table); nothing here is on a hot path.
local _, ng = ...

local util = {}

-- Raises the binding's "bad argument #n to 'fn' (<type> expected, got <type>)" unless
-- value's type is one of the given ones; level 3 blames the helper's caller.
local function check_arg(n, fn, value, expected, ...)
  local tv = type(value)
  for i = 1, select("#", ...) do
    if tv == select(i, ...) then return end
  end
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fn, expected, tv), 3)
end

-- Lua 5.3+ tells integers from floats; before (5.1, LuaJIT) every number is a double and an
-- integral one below 2^53 counts as an integer (an id, a count).
local math_type = math.type or function(v)
  if type(v) ~= "number" then return nil end
  return (v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53) and "integer" or "float"
end

--- math.type on every Lua: "integer", "float" or nil (5.1 and LuaJIT: an integral double
--- below 2^53 is an integer).
function util.math_type(v)
  return math_type(v)
end

local function fmt_number(v)
  if math_type(v) == "integer" then return math.type and tostring(v) or string.format("%.0f", v) end
  if v ~= v then return "nan" end
  return string.format("%.14g", v)
end

--- "[1, 2, 3]" for an array of numbers or strings (Python-like, for printing lists).
function util.format_list(t)
  check_arg(1, "format_list", t, "table", "table")
  local parts = {}
  for i = 1, #t do
    local v = t[i]
    parts[i] = type(v) == "number" and fmt_number(v) or tostring(v)
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function pretty(v, seen)
  local tv = type(v)
  if tv == "number" then return fmt_number(v) end
  if tv == "string" then return string.format("%q", v) end
  if tv ~= "table" then return tostring(v) end
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, n do parts[#parts + 1] = pretty(v[i], seen) end
  local keys = {}
  for k in pairs(v) do
    if not (math_type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  for _, k in ipairs(keys) do
    local ks = is_identifier(k) and k or "[" .. pretty(k, seen) .. "]"
    parts[#parts + 1] = ks .. " = " .. pretty(v[k], seen)
  end
  seen[v] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- A deterministic one-line rendering of any value (keys sorted), e.g. for
--- tok:to_table() or rt.cdna:get_config().
function util.pretty(v)
  return pretty(v, {})
end

--- The ids of query hits ({ {id, distance}, ... }) as an array.
function util.ids(hits, into)
  check_arg(1, "ids", hits, "table", "table")
  if into ~= nil then check_arg(2, "ids", into, "table", "table") end
  local out = into or {}
  local n = #hits
  for i = 1, n do out[i] = hits[i][1] end
  -- every old entry past n, holes or not (clearing a field during pairs is allowed)
  for k in pairs(out) do
    if not (math_type(k) == "integer" and k >= 1 and k <= n) then out[k] = nil end
  end
  return out
end

--- Space name ("L1".."L8") of a space given by name, alias or number.
function util.space_name(space)
  check_arg(1, "space_name", space, "string or number", "string", "number")
  local n = ng.spaces[space]
  if math_type(n) == "integer" then return ng.spaces[n] end
  if math_type(space) == "integer" and ng.spaces[space] then return ng.spaces[space] end
  return nil
end

return util
