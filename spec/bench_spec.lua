-- bench/lua_bench.lua (issue 3 item 8) at a tiny size: it runs and prints each ratio it promises.
local h = require "spec.helpers"

describe("bench/lua_bench.lua", function()
  it("runs under a stock Lua and prints its ratios against plain-Lua baselines", function()
    local out, code = h.run(h.cpath_env() .. h.lua .. " " .. h.source("bench/lua_bench.lua") ..
                            " 0.005 2>&1")
    assert.equals(0, code, out)
    local pattern = "rt.tokens:create{...}%s+[%d.]+ ns/op%s+plain table {...}%s+[%d.]+ ns/op%s+ratio%s+[%d.]+"
    assert.truthy(out:find(pattern), out)
    assert.truthy(out:find("rt.tokens:get(id).weight", 1, true), out)
    assert.truthy(out:find("rt.grid:range_query(c, r, {into = t})", 1, true), out)
    assert.truthy(out:find("bar: create at most 1.5x the plain table: ", 1, true), out)
    assert.truthy(out:find("bar: create at most 1.2x the plain table (issue 22", 1, true), out)
    assert.truthy(out:find("creates inside one rt:atomic%s+[%d.]+ ns/op%s+the same creates outside"), out)
    assert.truthy(out:find("rt.tokens:create_many(list), per token", 1, true), out)
    assert.truthy(out:find("rt.connections:create_many, per link", 1, true), out)
    assert.truthy(out:find("bar: 100,000 creates inside one rt:atomic at most 1.1x outside: ", 1, true), out)
    -- the query found what the brute-force scan found
    local ng_avg, plain_avg = out:match("average hits ([%d.]+); brute force found ([%d.]+)")
    assert.equals(plain_avg, ng_avg)
  end)
end)
