-- rt.cdna: the configuration block from Lua: read everything, validated changes, profiles, flags.
local h = require "spec.helpers"
local ng = h.ng

describe("rt.cdna", function()
  local rt
  before_each(function() rt = ng.Runtime() end)
  after_each(function() rt:close() end)

  it("get_config returns every field with the reference defaults", function()
    local c = rt.cdna:get_config()
    assert.equals(0x434E4441, c.magic)
    assert.equals(2, c.version_major)
    assert.equals(1, c.version_minor)
    assert.equals(0, c.profile_id)
    assert.equals("Default", c.profile)
    assert.equals(0x5, c.profile_state)
    assert.equals(0x3, c.flags)
    assert.same({1, 1, 1, 1, 1, 1, 1, 1}, c.scales)
    assert.same({10, 10, 10, 10, 10, 10, 10, 10}, c.bucket_sizes)
    assert.same({1, 1, 1, 1, 1, 1, 1, 1}, c.field_strength_limits)
    assert.same({0, 1, 2, 3, 4, 5, 6, 7}, c.dimension_ids)
    assert.same({255, 255, 255, 255, 255, 255, 255, 255}, c.dimension_flags)
    assert.equals(-1, c.allowed_connection_types) -- u64::MAX, as a Lua integer
    assert.equals(1000, c.max_out_degree)
    assert.equals(1000, c.max_in_degree)
    assert.equals(2000, c.max_total_degree)
    assert.equals(0, c.min_weight_threshold)
    assert.equals(1, c.max_weight_threshold)
    assert.equals(0, c.min_token_weight)
    assert.equals(1, c.max_token_weight)
    assert.equals(0, c.min_field_radius)
    assert.equals(255, c.max_field_radius)
    assert.equals(0, c.min_field_strength)
    assert.equals(255, c.max_field_strength)
    assert.equals(0, c.min_connection_weight)
    assert.equals(1, c.max_connection_weight)
    assert.equals(0, c.min_rigidity)
    assert.equals(1, c.max_rigidity)
    assert.equals(0.5, c.default_pull_strength)
    assert.equals(0.01, c.decay_rate)
    assert.equals(0.01, c.mutation_rate)
    assert.equals(0.1, c.crossover_rate)
    assert.equals(0.5, c.selection_pressure)
    assert.equals(0, c.evolution_flags)
    assert.equals(0.01, c.trace_sample_rate)
    assert.is_true(c.created_at > 0)
    assert.is_true(c.modified_at >= c.created_at)
    assert.equals("number", type(c.checksum))
  end)

  it("validate returns true for a fresh block", function()
    assert.same({true}, {rt.cdna:validate()})
  end)

  it("update_scales sets eight scales, recomputing the checksum", function()
    local sum = rt.cdna:get_config().checksum
    assert.is_true(rt.cdna:update_scales{1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5})
    assert.same({1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5}, rt.cdna:get_config().scales)
    assert.not_equals(sum, rt.cdna:get_config().checksum)
    assert.is_true(rt.cdna:validate())
  end)

  it("update_scales raises for a wrong count or a bad scale, changing nothing", function()
    local before = h.state(rt)
    h.raises("bad argument #2 to 'update_scales' (scale of L1 must be a finite number, got 'x')",
             function() rt.cdna:update_scales{L1 = "x"} end)
    h.raises("bad argument #2 to 'update_scales' (dimension_scales[0] (scale of L1) must be within "
             .. "0.000001..1000000, got 2e+06)",
             function() rt.cdna:update_scales{L1 = 2e6} end)
    h.raises("bad argument #2 to 'update_scales' (scale of L2 must be > 0, got -1)",
             function() rt.cdna:update_scales{1, -1, 1, 1, 1, 1, 1, 1} end)
    h.raises("bad argument #2 to 'update_scales' (scale of L3 must be a finite number, got nan)",
             function() rt.cdna:update_scales{1, 1, 0 / 0, 1, 1, 1, 1, 1} end)
    h.raises("bad argument #2 to 'update_scales' (scales must be a table {L1 = scale, ...}, got 'x')",
             function() rt.cdna:update_scales("x") end)
    assert.same(before, h.state(rt))
  end)

  it("get_profile returns the number and the name; set_profile takes either", function()
    assert.same({0, "Default"}, {rt.cdna:get_profile()})
    assert.is_true(rt.cdna:set_profile(1))
    assert.same({1, "Explorer"}, {rt.cdna:get_profile()})
    assert.equals(2000, rt.cdna:get_config().max_out_degree) -- the preset is applied
    assert.is_true(rt.cdna:set_profile("Analyst"))
    assert.same({2, "Analyst"}, {rt.cdna:get_profile()})
    assert.equals(0xB, rt.cdna:get_flags())
    assert.is_true(rt.cdna:validate())
  end)

  it("set_profile changes only what the profile defines", function()
    assert.is_true(rt.cdna:update_scales{1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5})
    assert.is_true(rt.cdna:set("max_in_degree", 700))
    assert.is_true(rt.cdna:set_flags(0xFF))
    local before = rt.cdna:get_config()
    assert.is_true(rt.cdna:set_profile("Explorer"))
    local c = rt.cdna:get_config()
    assert.same({1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5}, c.scales)
    assert.equals(700, c.max_in_degree)
    assert.equals(0xFF, c.flags)
    assert.equals(2000, c.max_out_degree)
    assert.equals(4000, c.max_total_degree)
    assert.is_true(math.abs(c.mutation_rate - 0.05) < 1e-7)
    for k, v in pairs(before) do
      if k ~= "profile" and k ~= "profile_id" and k ~= "modified_at" and k ~= "checksum"
         and k ~= "max_out_degree" and k ~= "max_total_degree" and k ~= "mutation_rate" then
        assert.same(v, c[k], k)
      end
    end
    assert.is_true(rt.cdna:validate())
  end)

  it("set_profile raises for unknown profiles", function()
    h.raises("bad argument #2 to 'set_profile' (profile must be 0..3, 255 or", function()
      rt.cdna:set_profile(7)
    end)
    h.raises("got 'Wizard'", function() rt.cdna:set_profile("Wizard") end)
    assert.equals(0, (rt.cdna:get_profile()))
  end)

  it("get_flags / set_flags", function()
    assert.equals(3, rt.cdna:get_flags())
    assert.is_true(rt.cdna:set_flags(0xFF))
    assert.equals(0xFF, rt.cdna:get_flags())
    h.raises("bad argument #2 to 'set_flags' (flags must be an integer 0..4294967295, got -1)",
             function() rt.cdna:set_flags(-1) end)
    assert.equals(0xFF, rt.cdna:get_flags())
  end)

  it("set(field, value) changes one field, validated, and get(field) reads it", function()
    assert.is_true(rt.cdna:set("max_token_weight", 50))
    assert.equals(50, rt.cdna:get("max_token_weight"))
    assert.is_true(rt.cdna:set("bucket_sizes", {5, 5, 5, 5, 5, 5, 5, 5}))
    assert.same({5, 5, 5, 5, 5, 5, 5, 5}, rt.cdna:get("bucket_sizes"))
    assert.equals(5, rt.grid:info().cell_size)
    assert.equals("Default", rt.cdna:get("profile"))
    assert.is_true(rt.cdna:validate())
  end)

  it("set raises for unknown or fixed fields and invalid blocks, changing nothing", function()
    local before = h.state(rt)
    h.raises("bad argument #2 to 'set' (unknown CDNA field 'max_weight')",
             function() rt.cdna:set("max_weight", 1) end)
    h.raises("bad argument #2 to 'set' (CDNA field 'checksum' is not settable)",
             function() rt.cdna:set("checksum", 1) end)
    h.raises("CDNA field 'profile_id' is not settable (use set_profile)",
             function() rt.cdna:set("profile_id", 1) end)
    h.raises("bad argument #3 to 'set' (min_token_weight must be a finite number, got nan)",
             function() rt.cdna:set("min_token_weight", 0 / 0) end)
    h.raises("bad argument #3 to 'set'", function() rt.cdna:set("min_token_weight", 5) end) -- > max
    h.raises("bad argument #3 to 'set'", function() rt.cdna:set("mutation_rate", 2) end)
    h.raises("bad argument #3 to 'set' (scales must be a table of 8 numbers, got 1)",
             function() rt.cdna:set("scales", 1) end)
    h.raises("bad argument #3 to 'set' (max_field_radius must be an integer 0..255, got 256)",
             function() rt.cdna:set("max_field_radius", 256) end)
    assert.same(before, h.state(rt))
  end)

  it("enforces token limits on later writes under STRICT_MODE", function()
    local id = rt.tokens:create{ weight = 5 }
    rt.cdna:set_flags(h.bor(rt.cdna:get_flags(), ng.cdna_flags.STRICT_MODE))
    h.raises("bad argument #2 to 'create'", function() rt.tokens:create{ weight = 5 } end)
    h.raises("bad argument #3 to '__newindex'", function() rt.tokens:get(id).weight = 2 end)
    assert.equals(5, rt.tokens:get(id).weight) -- existing records stay
  end)

  it("reset returns to the Default profile", function()
    rt.cdna:set_profile("Creative")
    rt.cdna:update_scales{2, 2, 2, 2, 2, 2, 2, 2}
    assert.is_true(rt.cdna:reset())
    local c = rt.cdna:get_config()
    assert.equals(0, c.profile_id)
    assert.same({1, 1, 1, 1, 1, 1, 1, 1}, c.scales)
    assert.equals(3, c.flags)
  end)
end)
