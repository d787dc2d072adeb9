-- Shared helpers of the busted specs of the Lua module: loading it, error checks, float32 rounding.
local helpers = {}

local build = os.getenv("NG_BUILD_DIR") or "build"
if build:sub(1, 1) ~= "/" then build = (os.getenv("PWD") or ".") .. "/" .. build end
helpers.build = build

-- The module comes from LUA_CPATH (ctest sets it to the build directory); when
-- busted is run by hand without it, fall back to NG_BUILD_DIR or build/.
if not (os.getenv("LUA_CPATH") or ""):find("%.so") then
  package.cpath = build .. "/?.so;" .. package.cpath
end
helpers.ng = require "neurograph"

--- Calls fn(...) and returns its error message; fails if it did not raise.
function helpers.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return tostring(err)
end

--- Asserts fn raises an error containing `text` (plain match).
function helpers.raises(text, fn, ...)
  local msg = helpers.error_of(fn, ...)
  if not msg:find(text, 1, true) then
    error(string.format("expected error containing %q, got %q", text, msg), 2)
  end
  return msg
end

--- x rounded to a float32, the way the store keeps weights and strengths.
function helpers.f32(x)
  return (string.unpack("f", string.pack("f", x)))
end

--- The shortest decimal of 6..9 digits that rounds to the same float32 as x
--- (what the binding returns for stored floats).
function helpers.as_stored(x)
  local f = helpers.f32(x)
  for p = 6, 9 do
    local r = tonumber(string.format("%." .. p .. "g", f))
    if helpers.f32(r) == f then return r end
  end
  return f
end

--- A summary of a runtime's contents, to check that a failed call changed nothing.
function helpers.state(rt)
  local s = { tokens = rt.tokens:count(), connections = rt.connections:count(), records = {} }
  for id, tok in rt.tokens:iter() do s.records["t" .. id] = helpers.ng.util.pretty(tok:to_table()) end
  for id, c in rt.connections:iter() do s.records["c" .. id] = helpers.ng.util.pretty(c:to_table()) end
  s.cdna = helpers.ng.util.pretty(rt.cdna:get_config())
  return s
end

--- Path of a file in the source tree: ctest passes the tree in NG_SOURCE_DIR (the shell's PWD
--- is wherever ctest was started, which need not be the tree); by hand, busted runs from it.
local source = os.getenv("NG_SOURCE_DIR") or "."
function helpers.source(path)
  return source .. "/" .. path
end

--- A new empty directory (remove it with helpers.rmdir).
function helpers.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir " .. d))
  return d
end

function helpers.rmdir(d)
  os.execute("rm -rf " .. d)
end

--- A whole file's bytes.
function helpers.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- Runs a shell command; returns stdout, exit code.
function helpers.run(cmd)
  local p = assert(io.popen(cmd .. "; echo \"__rc=$?\"", "r"))
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("__rc=(%d+)%s*$"))
  return out:gsub("__rc=%d+%s*$", ""), code
end

--- LUA_CPATH for child lua5.4 processes: the build directory only.
function helpers.cpath_env()
  return "LUA_CPATH='" .. build .. "/?.so;;' "
end

return helpers
