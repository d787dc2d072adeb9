-- Seeing a world (issue 20): rt:stats(), rt:metrics() checked by promtool, JSON export and
-- import, rt:plot{} rendered by rsvg-convert (ngrun's --metrics, --plot and REPL:
-- observe_ngrun_spec.lua).
local helpers = require "spec.helpers"
local ng = helpers.ng

local quote = helpers.quote

local write = helpers.write

-- A runtime with metrics on, n tokens in L1 (entities alternating), a chain of connections.
local function world(n)
  local rt = ng.Runtime()
  rt.cdna:set_flags(helpers.bor(rt.cdna:get_flags(), ng.cdna_flags.ENABLE_METRICS))
  local prev
  for i = 1, n do
    local id = rt.tokens:create{ weight = i / 4, entity = i % 2 == 0 and "Concept" or "Object",
      coords = { L1 = { i % 10, math.floor(i / 10), 0.5 } } }
    if prev then rt.connections:create(prev, id) end
    prev = id
  end
  return rt
end

local count = helpers.count

local dir
setup(function() dir = helpers.tmpdir() end)
teardown(function() helpers.rmdir(dir) end)

describe("rt:stats()", function()
  it("reports memory by component, per space", function()
    local rt = world(30)
    rt.grid:range_query({ 0, 0, 0 }, 2)
    local m = rt:stats().memory
    assert.is_true(m.token_records >= 30 * 64)
    assert.is_true(m.token_slot_maps > 0)
    assert.is_true(m.connections >= 29 * 64)
    assert.is_true(m.spaces.L1 > 0)
    assert.are.equal(0, m.spaces.L5)
    assert.are.equal(0, m.journal)
  end)

  it("counts queries per type with mean, p50 and p99 when ENABLE_METRICS is set", function()
    local rt = world(30)
    for _ = 1, 20 do rt.grid:range_query({ 0, 0, 0 }, 2) end
    for _ = 1, 5 do rt.grid:nearest({ 1, 1, 0 }, 3) end
    local s = rt:stats()
    assert.is_true(s.metrics)
    assert.are.equal(20, s.queries.range.count)
    assert.are.equal(5, s.queries.nearest.count)
    assert.are.equal(0, s.queries.box.count)
    assert.are.equal(0, s.queries.neighbours.count)
    local q = s.queries.range
    assert.is_true(q.mean > 0 and q.p50 > 0 and q.p50 <= q.p99)
    assert.is_true(s.writes >= 59)
  end)

  it("counts nothing when the flag is off (the default)", function()
    local rt = ng.Runtime()
    rt.tokens:create{ coords = { L1 = { 1, 1, 1 } } }
    rt.grid:range_query({ 0, 0, 0 }, 5)
    local s = rt:stats()
    assert.is_false(s.metrics)
    assert.are.equal(0, s.queries.range.count)
    assert.are.equal(0, s.writes)
  end)
end)

describe("rt:metrics()", function()
  it("is the Prometheus text format, accepted by promtool check metrics", function()
    local rt = world(25)
    rt.grid:range_query({ 0, 0, 0 }, 2)
    local text = rt:metrics()
    assert.matches('neurograph_tokens_placed{space="L1"} 25\n', text, 1, true)
    assert.matches('neurograph_query_duration_seconds_count{query="range"} 1\n', text, 1, true)
    assert.matches("# TYPE neurograph_query_duration_seconds summary\n", text, 1, true)
    local path = dir .. "/m.prom"
    write(path, text)
    local out, code = helpers.run(helpers.tool .. "promtool check metrics < " .. quote(path) .. " 2>&1")
    assert.are.equal(0, code, out)
  end)
end)

describe("JSON export and import", function()
  it("round-trips every token, placement, coordinate, connection and id", function()
    local rt = world(40)
    local extra = rt.tokens:create{ weight = 2, coords = { L1 = { 0.25, -1.5, 3 }, L3 = { 10, 20, 30 } } }
    rt.tokens:delete(7)
    local path = dir .. "/w.json"
    assert.is_true(rt:export(path, { format = "json" }))
    local back = assert(ng.import(path))
    assert.are.same(helpers.state(rt), helpers.state(back))
    local x, y, z = back.tokens:get(extra):coords("L3")
    assert.are.same({ 10, 20, 30 }, { x, y, z })
    assert.are.same({ "L1", "L3" }, back.tokens:get(extra):spaces())
    -- new ids continue as in the original
    assert.are.equal(rt.tokens:create{}, back.tokens:create{})
    -- and exporting the import gives the same file
    local again = dir .. "/w2.json"
    local rt2 = assert(ng.import(path))
    assert.is_true(rt2:export(again))
    assert.are.equal(helpers.read(path), helpers.read(again))
  end)

  it("reports a syntax error with its line, and imports nothing", function()
    local path = dir .. "/bad.json"
    write(path, '{\n  "format": "neurograph",\n  "version": 1,\n  "tokens": [ {"id": 1,, } ]\n}\n')
    local rt, msg = ng.import(path)
    assert.is_nil(rt)
    assert.matches("line 4", msg, 1, true)
  end)

  it("names the token and field of a bad value", function()
    local rt = world(3)
    local path = dir .. "/bad2.json"
    rt:export(path)
    local text = helpers.read(path):gsub('"weight":%s*[^,]+', '"weight": "heavy"', 1)
    write(path, text)
    local back, msg = ng.import(path)
    assert.is_nil(back)
    assert.matches("token 1: weight must be a finite number", msg, 1, true)
  end)

  it("checks its arguments", function()
    local rt = ng.Runtime()
    helpers.raises('format must be "json"', rt.export, rt, dir .. "/x", { format = "xml" })
    helpers.raises("path must not be empty", ng.import, "")
    local none, msg = ng.import(dir .. "/missing.json")
    assert.is_nil(none)
    assert.matches("missing.json", msg, 1, true)
  end)
end)

describe("rt:plot{}", function()
  local function png_size(path)
    local png = helpers.read(path)
    assert.are.equal("\137PNG", png:sub(1, 4))
    local function be32(i) -- a big-endian u32 (no string.unpack before Lua 5.3)
      local a, b, c, d = png:byte(i, i + 3)
      return ((a * 256 + b) * 256 + c) * 256 + d
    end
    return be32(17), be32(21)
  end

  it("writes an SVG with one circle per token in the view, a legend and a scale", function()
    local rt = world(30)
    rt.tokens:create{ coords = { L2 = { 0, 0, 0 } } } -- not in L1: not drawn
    local svg = dir .. "/world.svg"
    assert.are.equal(svg, rt:plot{ space = "L1", axes = "xy", path = svg, colour = "entity",
      connections = true, size = 800 })
    local text = helpers.read(svg)
    assert.are.equal(30, count(text, "<circle "))
    assert.are.equal(29, count(text, "<line x1") - 1) -- the connections, and the scale bar
    assert.matches(">Concept</text>", text, 1, true)
    assert.matches(">Object</text>", text, 1, true)
  end)

  it("renders with rsvg-convert at the size asked, not blank", function()
    local rt = world(30)
    local svg, png = dir .. "/p.svg", dir .. "/p.png"
    rt:plot{ path = svg, size = 640, connections = true }
    local out, code = helpers.run(helpers.tool .. "rsvg-convert " .. quote(svg) .. " -o " .. quote(png) .. " 2>&1")
    assert.are.equal(0, code, out)
    local w, h = png_size(png)
    assert.are.same({ 640, 640 }, { w, h })
    -- the same picture without its dots and lines compresses to far fewer bytes
    local blank_svg, blank_png = dir .. "/b.svg", dir .. "/b.png"
    write(blank_svg, helpers.read(svg):gsub("<circle[^\n]*\n", ""):gsub("<line[^\n]*\n", ""))
    helpers.run(helpers.tool .. "rsvg-convert " .. quote(blank_svg) .. " -o " .. quote(blank_png))
    assert.is_true(#helpers.read(png) > #helpers.read(blank_png) + 1000)
  end)

  it("colours by a tag function and checks its options", function()
    local rt = world(6)
    local svg = dir .. "/tag.svg"
    rt:plot{ path = svg, colour = "tag", tag = function(tok) return tok.weight > 1 and "heavy" or "light" end }
    local text = helpers.read(svg)
    assert.matches(">heavy</text>", text, 1, true)
    helpers.raises("axes must be two different letters", rt.plot, rt, { path = svg, axes = "xx" })
    helpers.raises("space must be a space name", rt.plot, rt, { path = svg, space = "L9" })
    helpers.raises('colour = "tag" needs tag', rt.plot, rt, { path = svg, colour = "tag" })
  end)
end)
