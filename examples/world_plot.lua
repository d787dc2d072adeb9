-- The picture in docs/world.svg: three clusters of entities in L1, linked within each cluster.
-- Made with: ngrun --plot=docs/world.svg examples/world_plot.lua
local ng = require "neurograph"
runtime.cdna:set_flags(runtime.cdna:get_flags() | ng.cdna_flags.ENABLE_METRICS)
local centres = { { "Concept", -2, 1 }, { "Object", 1.5, 2 }, { "Event", 0, -2 } }
local seed = 7
local function rnd() seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5 end
for _, c in ipairs(centres) do
  local prev
  for _ = 1, 15 do
    local id = runtime.tokens:create{ entity = c[1], weight = 1,
      coords = { L1 = { c[2] + 2 * rnd(), c[3] + 2 * rnd(), 0 } } }
    if prev then runtime.connections:create(prev, id) end
    prev = id
  end
end
for _ = 1, 50 do runtime.grid:range_query({ 0, 0, 0 }, 2) end
for _ = 1, 20 do runtime.grid:nearest({ 1, 1, 0 }, 5) end
