-- ngrun's side of seeing a world (issue 20): --metrics / --plot, and the REPL through a
-- pseudo-terminal (script from bsdutils). ngrun is a Lua 5.4 host: this file runs with the 5.4
-- module only (CMakeLists.txt excludes *ngrun_spec for the other Luas).
local helpers = require "spec.helpers"

local NGRUN = helpers.build .. "/ngrun"

local quote = helpers.quote

local write = helpers.write

local count = helpers.count

local dir
setup(function() dir = helpers.tmpdir() end)
teardown(function() helpers.rmdir(dir) end)

describe("ngrun --metrics and --plot", function()
  it("keeps a textfile up to date atomically and plots the host runtime after the script", function()
    local s, prom, svg = dir .. "/s.lua", dir .. "/run.prom", dir .. "/run.svg"
    write(s, [[
      local ng = require "neurograph"
      runtime.cdna:set_flags(runtime.cdna:get_flags() | ng.cdna_flags.ENABLE_METRICS)
      for i = 1, 12 do runtime.tokens:create{coords = {L1 = {i, 0, 0}}} end
      runtime.grid:range_query({0, 0, 0}, 3)
      local t = os.clock(); while os.clock() - t < 0.6 do end
    ]])
    local out, code = helpers.run(quote(NGRUN) .. " --metrics=" .. quote(prom .. ":0.2") .. " --plot="
      .. quote(svg) .. " " .. quote(s) .. " 2>&1")
    assert.are.equal(0, code, out)
    local text = helpers.read(prom)
    assert.matches("neurograph_tokens 12\n", text, 1, true)
    assert.matches('neurograph_query_duration_seconds_count{query="range"} 1\n', text, 1, true)
    local _, pcode = helpers.run(helpers.tool .. "promtool check metrics < " .. quote(prom))
    assert.are.equal(0, pcode)
    assert.are.equal(12, count(helpers.read(svg), "<circle "))
    local leftovers = helpers.run("ls " .. quote(dir) .. " | grep -c tmp || true")
    assert.are.equal("0", leftovers:match("%d+"))
  end)
end)

describe("the REPL (through a pseudo-terminal)", function()
  -- Runs ngrun's REPL under script(1) with `input` typed in; returns the transcript.
  local function repl(input, hist)
    local inf, log = dir .. "/in.txt", dir .. "/typescript"
    write(inf, input)
    helpers.run(helpers.tool .. "NGRUN_HISTORY=" .. quote(hist) .. " script -qfec " .. quote(NGRUN) .. " "
      .. quote(log) .. " < " .. quote(inf) .. " > /dev/null")
    return (helpers.read(log):gsub("\r", ""):gsub("\27%[[%d;?]*[%a]", ""))
  end

  it("predefines ng and runtime and prints tokens and tables readably", function()
    local hist = dir .. "/hist1"
    local t = repl("t = runtime.tokens:create{weight = 0.5, coords = {L1 = {1, 2, 3}}}\n"
      .. "runtime.tokens:get(t)\n{a = 1, b = {2, 3}}\nng.util.space_name(2)\n", hist)
    assert.matches("Token 1 {L1 = (1, 2, 3), weight = 0.5}", t, 1, true)
    assert.matches("{a = 1, b = {2, 3}}", t, 1, true)
    assert.matches("\nL2\n", t, 1, true)
  end)

  it("keeps history across sessions in $NGRUN_HISTORY", function()
    local hist = dir .. "/hist2"
    repl("x = 41\n", hist)
    assert.matches("x = 41", helpers.read(hist), 1, true)
    local t = repl("\27[A + 1\nx\n", hist) -- up-arrow recalls the last session's line
    assert.matches("\n42\n", t, 1, true)
  end)

  it("completes globals and fields with tab", function()
    local t = repl("ng.util.pre\t{1, 2}\n", dir .. "/hist3")
    assert.matches("{1, 2}", t, 1, true)
    assert.matches("ng.util.pretty", t, 1, true)
  end)
end)
