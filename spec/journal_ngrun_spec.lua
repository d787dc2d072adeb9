-- ngrun --world=DIR (issue 18): a durable world as the host runtime; a script killed at any
-- point keeps everything it committed; --sync and --checkpoint-on-exit. Lua 5.4 only (ngrun).
local helpers = require "spec.helpers"

local NGRUN = helpers.build .. "/ngrun"
local quote = helpers.quote

local dir
before_each(function() dir = helpers.tmpdir() end)
after_each(function() helpers.rmdir(dir) end)

local function ngrun(args)
  return helpers.run(quote(NGRUN) .. " " .. args .. " 2>&1")
end

local function count(world)
  local out = ngrun("--world=" .. quote(world) .. " -e 'print(runtime.tokens:count())'")
  return tonumber(out:match("^(%d+)"))
end

describe("ngrun --world", function()
  it("keeps every commit of a script killed with SIGKILL", function()
    local w = dir .. "/w"
    local s = dir .. "/s.lua"
    helpers.write(s, [[
      for i = 1, 5 do runtime.tokens:create{ weight = i } end
      runtime:atomic(function() runtime.tokens:create{} runtime.tokens:create{} end)
      io.stdout:write("committed\n") io.stdout:flush()
      while true do end
    ]])
    -- (in braces with stderr closed, so the shell's "Killed" notice stays out of the report)
    local out, code = helpers.run("{ timeout -s KILL 1 " .. quote(NGRUN) .. " --world=" .. quote(w)
      .. " --sync=always " .. quote(s) .. "; } 2>/dev/null")
    assert.are.equal(137, code)
    assert.matches("committed", out)
    assert.are.equal(7, count(w))
  end)

  it("keeps the commits of a script that fails", function()
    local w = dir .. "/w"
    local out, code = ngrun("--world=" .. quote(w) .. " -e 'runtime.tokens:create{} error(\"x\")'")
    assert.are.equal(1, code, out)
    assert.are.equal(1, count(w))
  end)

  it("writes a new snapshot at exit with --checkpoint-on-exit", function()
    local w = dir .. "/w"
    local out, code = ngrun("--world=" .. quote(w) .. " --sync=off --checkpoint-on-exit "
      .. "-e 'runtime.tokens:create{}'")
    assert.are.equal(0, code, out)
    local ls = helpers.run("ls " .. quote(w))
    assert.matches("snapshot%-00000000000000000001%.ngs", ls)
    assert.is_nil(ls:match("snapshot%-00000000000000000000"))
    assert.are.equal(1, count(w))
  end)

  it("refuses a bad --sync, and --sync or --checkpoint-on-exit without --world", function()
    local out, code = ngrun("--world=" .. quote(dir .. "/w") .. " --sync=sometimes -e 'x = 1'")
    assert.are.equal(1, code)
    assert.matches("bad value 'sometimes' for --sync", out, 1, true)
    out, code = ngrun("--sync=always -e 'x = 1'")
    assert.are.equal(1, code)
    assert.matches("need '--world'", out, 1, true)
    out, code = ngrun("--checkpoint-on-exit -e 'x = 1'")
    assert.are.equal(1, code)
    assert.matches("need '--world'", out, 1, true)
  end)

  it("stops before any script runs when the world does not open", function()
    local w = dir .. "/w"
    assert.are.equal(0, select(2, ngrun("--world=" .. quote(w) .. " -e 'runtime.tokens:create{}'")))
    os.remove(w .. "/journal-00000000000000000000.ngj")
    local out, code = ngrun("--world=" .. quote(w) .. " -e 'print(\"ran\")'")
    assert.are.equal(1, code)
    assert.is_nil(out:match("ran"))
    assert.matches("ngrun: .*journal 0 is missing", out)
  end)
end)
