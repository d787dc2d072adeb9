-- examples/runtime_storage.lua (issue 3 item 7) run by a stock Lua with LUA_CPATH at the build.
local h = require "spec.helpers"

local RULE = string.rep("=", 60)

local expected = table.concat({
  "", RULE, "NeuroGraph v" .. h.ng._VERSION .. " - Runtime Storage Example", RULE, "",
  "Initializing runtime...", "✓ Runtime initialized",
  RULE, "TOKEN OPERATIONS", RULE, "",
  "1. Creating tokens...", "   Created tokens: 1, 2, 3", "",
  "2. Getting token...", "   Token 1: weight=1.0", "",
  "3. Updating token...", "   Update successful", "   Token 1: weight=0.9", "",
  "4. Listing tokens...", "   Found 3 tokens: [1, 2, 3]", "",
  "5. Counting tokens...", "   Total tokens: 3", "",
  "6. Deleting token...", "   Token 3 deleted", "   Remaining tokens: 2", "",
  RULE, "CONNECTION OPERATIONS", RULE, "",
  "1. Creating connection...", "   Created connection 1: 1 -> 2", "",
  "2. Getting connection...", "   Connection: 1 -> 2 (AssociatedWith)", "",
  "3. Counting connections...", "   Total connections: 1", "",
  "4. Listing connections...", "   Found 1 connections: [1]", "",
  RULE, "GRID OPERATIONS", RULE, "",
  "1. Getting grid info...", "   Tokens in grid: 2", "",
  "2. Finding neighbors...", "   Found 1 neighbors within radius 10.0",
  "     - Token 2 at distance 3.61", "",
  "3. Range query around origin...", "   Found 2 tokens near origin",
  "     - Token 1 at distance 0.00", "     - Token 2 at distance 3.61", "",
  RULE, "CDNA CONFIGURATION", RULE, "",
  "1. Getting CDNA config...", "   Profile ID: 0", "   Flags: 0x3", "",
  "2. Validating CDNA...", "   CDNA is valid", "",
  "3. Updating dimension scales...", "   Scales update successful",
  "   New scales: [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]", "",
  "4. Managing profile...", "   Current profile: 0", "   New profile: 1", "",
  "5. Managing flags...", "   Current flags: 0x3", "   New flags: 0xFF", "",
  RULE, "CLEANUP", RULE, "",
  "1. Clearing all tokens...", "   Removed 2 tokens", "",
  "2. Final counts:", "   Tokens: 0", "   Connections: 0", "",
  RULE, "✓ All examples completed successfully!", RULE, "",
}, "\n")

describe("examples/runtime_storage.lua", function()
  it("runs under a stock Lua and prints the real results", function()
    local out, code = h.run(h.cpath_env() .. "LUA_PATH='' " .. h.lua .. " " ..
                            h.source("examples/runtime_storage.lua") .. " 2>&1")
    assert.equals(0, code)
    assert.equals(expected, out)
  end)
end)
