-- neurograph in LÖVE 11 (LuaJIT): agents wander in space L1 of a runtime; each perceives the
-- others within its radius through rt.grid:range_query; a connection lives in the store while
-- two agents perceive each other and is drawn as a line; a click asks rt.grid:nearest for the
-- agent nearest the pointer and highlights it.
--   LUA_CPATH='build-luajit/?.so;;' love examples/love            (from the source tree)
--   love examples/love --test 300 [--shot out.png]                  (CI: N frames, checks, exit)
-- Without LUA_CPATH the module is looked for in ../build-luajit (a build with NG_LUA=luajit).

local base = love.filesystem.getSourceBaseDirectory() -- the directory holding examples/love
package.cpath = package.cpath .. ";" .. base .. "/../build-luajit/?.so"
local ok, ng = pcall(require, "neurograph")
if not ok then
  error("cannot load the neurograph module: build it with -DNG_LUA=luajit and set LUA_CPATH\n"
        .. tostring(ng), 0)
end

local LUA_NAME = jit and jit.version or _VERSION
local AGENTS, RADIUS, SPEED = 300, 9, 12 -- world units (L1), per second
local SCALE = 4                          -- pixels per world unit: 800x600 is 200x150 units
local W, H = 200, 150

local rt, agents, ids, xyz
local links = {}  -- "a:b" (a < b) -> connection id, while a and b perceive each other
local hits = {}   -- reused result table of range_query
local selected    -- id of the agent the last click found
local stats = { frames = 0, perceived = 0, clicks = 0, click_hits = 0 }
local test -- { frames = N, shot = path } in test mode

local function parse_args(args)
  for i = 1, #args do
    if args[i] == "--test" then
      test = test or {}
      test.frames = tonumber(args[i + 1]) or 300
    elseif args[i] == "--shot" then
      test = test or { frames = 300 }
      test.shot = args[i + 1]
    end
  end
  if not test and os.getenv("NG_LOVE_TEST") then
    test = { frames = tonumber(os.getenv("NG_LOVE_TEST")) or 300, shot = os.getenv("NG_LOVE_SHOT") }
  end
end

function love.load(args)
  parse_args(args or {})
  love.math.setRandomSeed(20261206)
  rt = ng.Runtime()
  agents, ids, xyz = {}, {}, {}
  for i = 1, AGENTS do
    local a = { x = love.math.random() * W, y = love.math.random() * H,
                heading = love.math.random() * 2 * math.pi }
    a.id = rt.tokens:create{ coords = { L1 = { a.x, a.y, 0 } } }
    agents[i], ids[i] = a, a.id
  end
  stats.started = love.timer.getTime()
end

-- Wander: turn a little at random, bounce off the edges; then one batch move for all.
local function wander(dt)
  for i, a in ipairs(agents) do
    a.heading = a.heading + (love.math.random() - 0.5) * 4 * dt
    local nx, ny = a.x + math.cos(a.heading) * SPEED * dt, a.y + math.sin(a.heading) * SPEED * dt
    if nx < 0 or nx > W then a.heading = math.pi - a.heading; nx = math.max(0, math.min(W, nx)) end
    if ny < 0 or ny > H then a.heading = -a.heading; ny = math.max(0, math.min(H, ny)) end
    a.x, a.y = nx, ny
    xyz[3 * i - 2], xyz[3 * i - 1], xyz[3 * i] = nx, ny, 0
  end
  rt.tokens:move("L1", ids, xyz)
end

-- Perception through the grid; the store's connections follow who perceives whom.
local function perceive()
  local seen = {}
  local centre = { 0, 0, 0 }
  for _, a in ipairs(agents) do
    centre[1], centre[2] = a.x, a.y
    rt.grid:range_query(centre, RADIUS, { space = "L1", into = hits })
    for k = 1, #hits do
      local b = hits[k][1]
      if b ~= a.id then
        stats.perceived = stats.perceived + 1
        local key = a.id < b and a.id .. ":" .. b or b .. ":" .. a.id
        seen[key] = true
        if not links[key] then links[key] = rt.connections:create(a.id, b) end
      end
    end
  end
  for key, conn in pairs(links) do
    if not seen[key] then
      rt.connections:delete(conn)
      links[key] = nil
    end
  end
end

local function click(px, py)
  local found = rt.grid:nearest({ px / SCALE, py / SCALE, 0 }, 1, { space = "L1" })
  stats.clicks = stats.clicks + 1
  if found[1] then
    stats.click_hits = stats.click_hits + 1
    selected = found[1][1]
  end
end

function love.mousepressed(x, y, button)
  if button == 1 then click(x, y) end
end

-- What test mode checks after its frames: the store agrees with the scene.
local function check()
  local problems = {}
  local function expect(cond, what) if not cond then problems[#problems + 1] = what end end
  local nlinks = 0
  for _ in pairs(links) do nlinks = nlinks + 1 end
  expect(rt.tokens:count() == AGENTS, ("token count %d, expected %d"):format(rt.tokens:count(), AGENTS))
  expect(rt.connections:count() == nlinks,
         ("%d connections, %d links drawn"):format(rt.connections:count(), nlinks))
  expect(stats.perceived > 0, "no agent ever perceived another")
  expect(stats.click_hits == stats.clicks and stats.clicks > 0, "a click found no agent")
  local a = agents[1]
  local x, y = rt.tokens:get(a.id):coords("L1")
  expect(math.abs(x - a.x) < 0.02 and math.abs(y - a.y) < 0.02, "agent 1 is not where the store has it")
  return problems
end

function love.update(dt)
  if test then dt = 1 / 60 end -- the same scene on any machine
  wander(dt)
  perceive()
  stats.frames = stats.frames + 1
  if test then
    if stats.frames % 50 == 0 then click(agents[stats.frames % AGENTS + 1].x * SCALE, 300) end
    if stats.frames == test.frames and test.shot then
      love.graphics.captureScreenshot(function(image)
        local f = assert(io.open(test.shot, "wb"))
        f:write(image:encode("png"):getString())
        f:close()
      end)
    elseif stats.frames > test.frames then
      local elapsed = love.timer.getTime() - stats.started
      local problems = check()
      local nlinks = rt.connections:count()
      print(("love example: %d frames, %d agents, %d links, %d perceptions, %.1f frames/s (%s)")
            :format(test.frames, AGENTS, nlinks, stats.perceived, test.frames / elapsed, LUA_NAME))
      for _, p in ipairs(problems) do print("love example: FAILED: " .. p) end
      rt:close()
      rt = nil -- love.draw still runs once before the quit
      love.event.quit(#problems == 0 and 0 or 1)
    end
  end
end

function love.draw()
  if not rt then return end
  love.graphics.clear(0.07, 0.08, 0.1)
  love.graphics.setColor(0.3, 0.6, 0.9, 0.5)
  local pos = {}
  for _, a in ipairs(agents) do pos[a.id] = a end
  for key in pairs(links) do
    local i, j = key:match("^(%d+):(%d+)$")
    local a, b = pos[tonumber(i)], pos[tonumber(j)]
    love.graphics.line(a.x * SCALE, a.y * SCALE, b.x * SCALE, b.y * SCALE)
  end
  for _, a in ipairs(agents) do
    if a.id == selected then
      love.graphics.setColor(1, 0.8, 0.2)
      love.graphics.circle("line", a.x * SCALE, a.y * SCALE, RADIUS * SCALE)
      love.graphics.circle("fill", a.x * SCALE, a.y * SCALE, 6)
    else
      love.graphics.setColor(0.85, 0.9, 1)
      love.graphics.circle("fill", a.x * SCALE, a.y * SCALE, 3)
    end
  end
  love.graphics.setColor(0, 0, 0, 0.7)
  love.graphics.rectangle("fill", 0, 0, 800, 28)
  love.graphics.setColor(1, 1, 1)
  love.graphics.print(("neurograph %s on %s: %d agents, %d links; click to find the nearest")
    :format(ng._VERSION, LUA_NAME, rt.tokens:count(), rt.connections:count()), 8, 8)
end
