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

--- The stand-alone Lua the specs run on (ctest passes it in NG_LUA_EXE), for child processes.
-- By hand (`luajit /usr/bin/busted spec`): the interpreter running busted.
helpers.lua = os.getenv("NG_LUA_EXE") or (arg and arg[-1]) or "lua5.4"
--- Lua 5.4 only: <close>, ngrun (a 5.4 host); 5.3+: integers and bitwise operators.
helpers.lua54 = _VERSION == "Lua 5.4"
helpers.unpack = table.unpack or rawget(_G, "unpack") -- 5.1 and LuaJIT: a global


--- collectgarbage("incremental", pause, stepmul) on every Lua (before 5.4: the two settings).
function helpers.gc_incremental(pause, stepmul)
  if helpers.lua54 then return collectgarbage("incremental", pause, stepmul) end
  collectgarbage("setpause", pause)
  collectgarbage("setstepmul", stepmul)
end

--- Garbage whose finalizer is fn: a table (5.2+), a userdata on 5.1 and LuaJIT, where only
--- userdata have finalizers.
function helpers.finalizable(fn)
  local newproxy = rawget(_G, "newproxy")
  if not newproxy then return setmetatable({}, { __gc = fn }) end
  local u = newproxy(true)
  getmetatable(u).__gc = fn
  return u
end

--- 2^k as the integer 5.3+ has (a float there would print differently), an exact double before.
function helpers.pow2(k)
  return math.tointeger and math.tointeger(2 ^ k) or 2 ^ k
end

-- Bitwise and, or, xor and shifts on non-negative integers below 2^53: 5.3+'s operators, an
-- arithmetic version for 5.1 and LuaJIT (LuaJIT's bit library is 32-bit; ids are not).
if _VERSION >= "Lua 5.3" then
  local ops = assert(load([[return
    function(a, b) return a & b end, function(a, b) return a | b end,
    function(a, b) return a ~ b end, function(a, n) return a << n end,
    function(a, n) return a >> n end]]))
  helpers.band, helpers.bor, helpers.bxor, helpers.shl, helpers.shr = ops()
else
  local function bitwise(a, b, keep)
    local r, p = 0, 1
    while a > 0 or b > 0 do
      local x, y = a % 2, b % 2
      if keep(x, y) then r = r + p end
      a, b, p = (a - x) / 2, (b - y) / 2, p * 2
    end
    return r
  end
  function helpers.band(a, b) return bitwise(a, b, function(x, y) return x + y == 2 end) end
  function helpers.bor(a, b) return bitwise(a, b, function(x, y) return x + y >= 1 end) end
  function helpers.bxor(a, b) return bitwise(a, b, function(x, y) return x + y == 1 end) end
  function helpers.shl(a, n) return a * 2 ^ n end
  function helpers.shr(a, n) return math.floor(a / 2 ^ n) end
end

--- x rounded to a float32, the way the store keeps weights and strengths.
if string.pack then
  function helpers.f32(x)
    return (string.unpack("f", string.pack("f", x)))
  end
else -- 5.1, LuaJIT: round to 24 significant bits by hand, ties to even, subnormals and overflow
  function helpers.f32(x)
    if x ~= x or x == 0 or x == math.huge or x == -math.huge then return x end
    local m, e = math.frexp(x) -- luacheck: ignore 143 (5.1 has it; x = m * 2^e, 0.5 <= |m| < 1)
    local bits = 24 - math.max(0, -125 - e)
    local s = m * 2 ^ bits
    local r = math.floor(s + 0.5)
    if r - s == 0.5 and r % 2 == 1 then r = r - 1 end
    local v = r * 2 ^ (e - bits)
    if math.abs(v) >= 2 ^ 128 then return x > 0 and math.huge or -math.huge end
    return v
  end
end

--- Little-endian unsigned integer of n bytes (string.pack("<In", v) where 5.3+ has it).
function helpers.le_bytes(v, n)
  local t = {}
  for i = 1, n do
    t[i] = string.char(v % 256)
    v = (v - v % 256) / 256
  end
  return table.concat(t)
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
  local s = f:read("*a")
  f:close()
  return s
end

--- A prefix for running a system tool (script, promtool, rsvg-convert) from the specs: without
--- the sanitizer runtime the ASan step preloads into the Lua interpreter (the tool is not
--- instrumented, and its own leaks would abort it; ngrun, linked with the runtime, needs no
--- preload).
helpers.tool = "env -u LD_PRELOAD "

--- A string as one shell word (single-quoted).
function helpers.quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

--- Writes text to path (replacing it).
function helpers.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- How many times pattern occurs in text.
function helpers.count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

--- Runs a shell command; returns stdout, exit code.
function helpers.run(cmd)
  local p = assert(io.popen(cmd .. "; echo \"__rc=$?\"", "r"))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("__rc=(%d+)%s*$"))
  return out:gsub("__rc=%d+%s*$", ""), code
end

--- LUA_CPATH for child Lua processes (helpers.lua): the build directory only.
function helpers.cpath_env()
  return "LUA_CPATH='" .. build .. "/?.so;;' "
end

return helpers
