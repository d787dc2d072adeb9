-- Progress bars (issue 20, item 6): long saves, loads, exports and imports draw a bar on stderr
-- when it is a terminal, and nothing when it is not. Run through ngrun under a pseudo-terminal
-- (script from bsdutils); NG_PROGRESS_AFTER=0 shows the bar at once, so small stores do.
-- ngrun is a Lua 5.4 host: this file runs with the 5.4 module only (see CMakeLists.txt).
local helpers = require "spec.helpers"

local NGRUN = helpers.build .. "/ngrun"

local quote = helpers.quote

local write = helpers.write

local dir
setup(function() dir = helpers.tmpdir() end)
teardown(function() helpers.rmdir(dir) end)

-- A script that saves, loads, exports and imports a world of 100 tokens.
local function world_script()
  local s = dir .. "/world.lua"
  write(s, ([[
local ng = require "neurograph"
local rt = ng.Runtime()
for _ = 1, 100 do rt.tokens:create{weight = 1} end
assert(rt:save(%q))
assert(ng.load(%q))
assert(rt:export(%q))
assert(ng.import(%q))
print("done")
]]):format(dir .. "/w.snap", dir .. "/w.snap", dir .. "/w.json", dir .. "/w.json"))
  return s
end

-- Runs ngrun on `script` under a pseudo-terminal; returns what the terminal received.
local function on_terminal(env, script)
  local log = dir .. "/typescript"
  local _, code = helpers.run(helpers.tool .. env .. " script -qfec " .. quote(NGRUN .. " " .. quote(script)) .. " "
    .. quote(log) .. " < /dev/null > /dev/null")
  assert.are.equal(0, code)
  return helpers.read(log)
end

describe("progress bars", function()
  it("are drawn on a terminal for save, load, export and import, and erased at the end", function()
    local out = on_terminal("NG_PROGRESS_AFTER=0", world_script())
    for _, what in ipairs({ "save", "load", "export", "import" }) do
      assert.matches("\r" .. what .. " +%[[#.]+%] +%d+%%", out)
    end
    assert.matches("\r +\r", out) -- the line is blanked, the cursor back at its start
    assert.matches("done", out, 1, true)
  end)

  it("wait NG_PROGRESS_AFTER seconds (1 by default) before drawing", function()
    local out = on_terminal("env -u NG_PROGRESS_AFTER", world_script())
    assert.is_nil(out:find("%[[#.]+%]"))
    assert.matches("done", out, 1, true)
  end)

  it("are never written when stderr is not a terminal", function()
    local err = dir .. "/stderr"
    local _, code = helpers.run("NG_PROGRESS_AFTER=0 " .. quote(NGRUN) .. " "
      .. quote(world_script()) .. " > /dev/null 2> " .. quote(err))
    assert.are.equal(0, code)
    assert.are.equal("", helpers.read(err))
  end)

  it("are drawn for ngrun --save and --load", function()
    local s, snap = dir .. "/one.lua", dir .. "/host.snap"
    write(s, "runtime.tokens:create{weight = 1}\n")
    local out = on_terminal("NG_PROGRESS_AFTER=0", s)
    assert.is_nil(out:find("\rsave +%[")) -- no --save: nothing saved, no bar
    local log = dir .. "/typescript"
    local _, code = helpers.run(helpers.tool .. "NG_PROGRESS_AFTER=0 script -qfec " .. quote(NGRUN .. " --save="
      .. quote(snap) .. " " .. quote(s)) .. " " .. quote(log) .. " < /dev/null > /dev/null")
    assert.are.equal(0, code)
    assert.matches("\rsave +%[", helpers.read(log))
    _, code = helpers.run(helpers.tool .. "NG_PROGRESS_AFTER=0 script -qfec " .. quote(NGRUN .. " --load="
      .. quote(snap) .. " " .. quote(s)) .. " " .. quote(log) .. " < /dev/null > /dev/null")
    assert.are.equal(0, code)
    assert.matches("\rload +%[", helpers.read(log))
  end)
end)
