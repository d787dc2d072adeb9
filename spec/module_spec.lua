-- The module table of require "neurograph": version, name tables, no globals, embedded Lua part.
local h = require "spec.helpers"
local ng = h.ng

describe("require 'neurograph'", function()
  it("returns the module table with _VERSION", function()
    assert.is_table(ng)
    assert.equals("0.4.0", ng._VERSION)
    assert.equals(ng, require "neurograph")
  end)

  it("sets no global when opened again in a fresh state", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    local util = package.loaded["neurograph.util"]
    package.loaded.neurograph = nil
    local again = require "neurograph"
    package.loaded.neurograph = ng
    package.loaded["neurograph.util"] = util
    assert.is_table(again)
    for k in pairs(_G) do assert.is_true(before[k], "new global " .. tostring(k)) end
  end)

  it("names the spaces both ways, aliases included", function()
    assert.equals("L1", ng.spaces[1])
    assert.equals("L8", ng.spaces[8])
    assert.equals(1, ng.spaces.L1)
    assert.equals(1, ng.spaces.physical)
    assert.equals(8, ng.spaces.abstract)
    assert.equals(8, #ng.spaces)
  end)

  it("names entities, connection types, categories, profiles and mutability both ways", function()
    assert.equals(5, ng.entities.Concept)
    assert.equals("Concept", ng.entities[5])
    assert.equals("Undefined", ng.entities[0])
    assert.equals(0x10, ng.connection_types.Cause)
    assert.equals("AssociatedWith", ng.connection_types[0x50])
    assert.equals("Alternates", ng.connection_types[0xAF])
    assert.is_nil(ng.connection_types[0xB0])
    assert.equals("Semantic", ng.categories[0])
    assert.equals(10, ng.categories.Dynamic)
    assert.equals(1, ng.profiles.Explorer)
    assert.equals("Custom", ng.profiles[255])
    assert.equals(2, ng.mutability.Hypothesis)
  end)

  it("exposes the flag bits", function()
    assert.equals(0x0001, ng.token_flags.ACTIVE)
    assert.equals(0x0F00, ng.token_flags.ENTITY_MASK)
    assert.equals(0x04, ng.connection_flags.BIDIRECTIONAL)
    assert.equals(0x8, ng.cdna_flags.STRICT_MODE)
  end)

  it("carries the pure-Lua part compiled in (ng.util, package.loaded['neurograph.util'])", function()
    assert.is_table(ng.util)
    assert.equals(ng.util, package.loaded["neurograph.util"])
    assert.equals("[1, 2.5, 3]", ng.util.format_list{1, 2.5, 3})
    assert.equals('{1, 2, a = "x", b = {c = true}}', ng.util.pretty{1, 2, a = "x", b = {c = true}})
    assert.same({4, 7}, ng.util.ids{{4, 0}, {7, 1.5}})
    assert.equals("L2", ng.util.space_name("sensory"))
    assert.equals("L3", ng.util.space_name(3))
  end)

  it("loads in a stock Lua with only LUA_CPATH set (no Lua path needed)", function()
    local out, code = h.run(h.cpath_env() .. "LUA_PATH='' " .. h.lua .. " -e " ..
      "'local ng = require \"neurograph\"; print(ng._VERSION, ng.util ~= nil)' 2>&1")
    assert.equals(0, code)
    assert.equals("0.4.0\ttrue\n", out)
  end)
end)
