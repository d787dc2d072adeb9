-- The runtime storage example of the original project (reference 7.3), ported to Lua:
-- the same sections and steps, printing the real results of each call.
-- Run: LUA_CPATH='build/?.so;;' lua5.4 examples/runtime_storage.lua
local ok_require, ng = pcall(require, "neurograph")
if not ok_require then
  io.stderr:write("neurograph module not found: build it (scripts/setup) and point LUA_CPATH at ",
                  "the build directory, e.g. LUA_CPATH='build/?.so;;'\n", tostring(ng), "\n")
  os.exit(1)
end

local RULE = string.rep("=", 60)

local function section(title)
  print(RULE)
  print(title)
  print(RULE)
end

local function format_scales(scales)
  local parts = {}
  for i, v in ipairs(scales) do parts[i] = string.format("%.1f", v) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function main()
  print()
  print(RULE)
  print("NeuroGraph v" .. ng._VERSION .. " - Runtime Storage Example")
  print(RULE)
  print()
  print("Initializing runtime...")
  local rt = ng.Runtime{ grid_size = 1000, dimensions = 50 }
  print("✓ Runtime initialized")

  section("TOKEN OPERATIONS")
  print()
  print("1. Creating tokens...")
  -- The original passed only weights; positions in L1 make the grid section meaningful.
  local t1 = rt.tokens:create{ weight = 1.0, coords = { L1 = {0, 0, 0} } }
  local t2 = rt.tokens:create{ weight = 0.8, coords = { L1 = {2, 3, 0} } }
  local t3 = rt.tokens:create{ weight = 1.2, coords = { L1 = {5, 5, 5} } }
  print(string.format("   Created tokens: %d, %d, %d", t1, t2, t3))

  print()
  print("2. Getting token...")
  local tok = rt.tokens:get(t1)
  print(string.format("   Token %d: weight=%.1f", tok.id, tok.weight))

  print()
  print("3. Updating token...")
  if rt.tokens:update(t1, { weight = 0.9 }) then
    print("   Update successful")
    print(string.format("   Token %d: weight=%.1f", t1, tok.weight))
  end

  print()
  print("4. Listing tokens...")
  local ids = rt.tokens:list(10)
  print(string.format("   Found %d tokens: %s", #ids, ng.util.format_list(ids)))

  print()
  print("5. Counting tokens...")
  print(string.format("   Total tokens: %d", rt.tokens:count()))

  print()
  print("6. Deleting token...")
  if rt.tokens:delete(t3) then
    print(string.format("   Token %d deleted", t3))
    print(string.format("   Remaining tokens: %d", rt.tokens:count()))
  end

  print()
  section("CONNECTION OPERATIONS")
  print()
  print("1. Creating connection...")
  local cid = rt.connections:create(t1, t2)
  print(string.format("   Created connection %d: %d -> %d", cid, t1, t2))

  print()
  print("2. Getting connection...")
  local conn = rt.connections:get(cid)
  print(string.format("   Connection: %d -> %d (%s)", conn.from, conn.to, conn.type))

  print()
  print("3. Counting connections...")
  print(string.format("   Total connections: %d", rt.connections:count()))

  print()
  print("4. Listing connections...")
  local cids = rt.connections:list(10)
  print(string.format("   Found %d connections: %s", #cids, ng.util.format_list(cids)))

  print()
  section("GRID OPERATIONS")
  print()
  print("1. Getting grid info...")
  print(string.format("   Tokens in grid: %d", rt.grid:info().count))

  print()
  print("2. Finding neighbors...")
  local ok, err = pcall(function()
    local hits = rt.grid:find_neighbors(t1, 10.0)
    print(string.format("   Found %d neighbors within radius 10.0", #hits))
    for i = 1, math.min(5, #hits) do
      print(string.format("     - Token %d at distance %.2f", hits[i][1], hits[i][2]))
    end
  end)
  if not ok then print("   Error: " .. tostring(err)) end

  print()
  print("3. Range query around origin...")
  ok, err = pcall(function()
    local hits = rt.grid:range_query({0, 0, 0}, 5.0)
    print(string.format("   Found %d tokens near origin", #hits))
    for i = 1, math.min(3, #hits) do
      print(string.format("     - Token %d at distance %.2f", hits[i][1], hits[i][2]))
    end
  end)
  if not ok then print("   Error: " .. tostring(err)) end

  print()
  section("CDNA CONFIGURATION")
  print()
  print("1. Getting CDNA config...")
  local config = rt.cdna:get_config()
  print(string.format("   Profile ID: %d", config.profile_id))
  print(string.format("   Flags: 0x%X", config.flags))

  print()
  print("2. Validating CDNA...")
  local valid, why = rt.cdna:validate()
  print(valid and "   CDNA is valid" or ("   CDNA is invalid: " .. why))

  print()
  print("3. Updating dimension scales...")
  if rt.cdna:update_scales{1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5} then
    print("   Scales update successful")
    print("   New scales: " .. format_scales(rt.cdna:get_config().scales))
  end

  print()
  print("4. Managing profile...")
  print(string.format("   Current profile: %d", (rt.cdna:get_profile())))
  rt.cdna:set_profile(1)
  print(string.format("   New profile: %d", (rt.cdna:get_profile())))

  print()
  print("5. Managing flags...")
  print(string.format("   Current flags: 0x%X", rt.cdna:get_flags()))
  rt.cdna:set_flags(0xFF)
  print(string.format("   New flags: 0x%X", rt.cdna:get_flags()))

  print()
  section("CLEANUP")
  print()
  print("1. Clearing all tokens...")
  print(string.format("   Removed %d tokens", (rt.tokens:clear())))

  print()
  print("2. Final counts:")
  print(string.format("   Tokens: %d", rt.tokens:count()))
  print(string.format("   Connections: %d", rt.connections:count()))

  print()
  print(RULE)
  print("✓ All examples completed successfully!")
  print(RULE)
  rt:close() -- explicit, so this runs on every Lua (5.4 could use <close>)
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  print("\n❌ Error: " .. tostring(err))
  os.exit(1)
end
