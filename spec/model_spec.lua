-- Randomized model test: the same long sequence of operations applied to the store (through the
-- Lua API) and to a plain-Lua reference model of tokens, connections and spatial queries, compared
-- at every step. NG_MODEL_SEED and NG_MODEL_OPS override the fixed seed and the operation count.
local h = require "spec.helpers"
local ng = h.ng

local SEED = tonumber(os.getenv("NG_MODEL_SEED") or "") or 20261125
local OPS = tonumber(os.getenv("NG_MODEL_OPS") or "") or 50000
local FULL_CHECK_EVERY = 1000
local TOL = 1e-4

local f32 = h.f32
local floor, sqrt, abs, random = math.floor, math.sqrt, math.abs, math.random

-- Per space: the fixed-point scale, the runtime's dimension scale (its unit multiplier), and
-- the decoded unit coordinates are drawn on.
local BASE = {100, 10000, 1000, 10000, 10000, 10000, 100, 10000}
local MUL = {10, 1, 0.5, 1, 1, 1, 1, 100}
local UNIT = {10, 0.1, 0.25, 0.1, 0.1, 0.1, 1, 10}
local TYPES = {"AssociatedWith", "Cause", "Before", "Near", "Likes"}

-- A raw coordinate decoded: the original's decode (raw / fixed-point scale) times the scale.
local function decode(r, s) return r / BASE[s] * MUL[s] end

-- The codec (docs/api.md): a whole number of steps is that number (the value equals the step
-- decoded, as a double or as a float); anything else truncates toward zero.
local function encode(v, s)
  local q = v / MUL[s] * BASE[s]
  local k = floor(q + 0.5)
  local x
  if decode(k, s) == v or f32(decode(k, s)) == v or k * MUL[s] / BASE[s] == v then x = k
  else x = q >= 0 and floor(q) or -floor(-q) end
  if x > 32767 then x = 32767 elseif x < -32768 then x = -32768 end
  return x
end

local function fail(step, op, fmt, ...)
  error(string.format("model mismatch at step %d (%s, seed %d): " .. fmt, step, op, SEED, ...), 0)
end

describe("randomized model test", function()
  it(string.format("agrees with a plain-Lua model over %d operations (seed %d)", OPS, SEED), function()
    print(string.format("\nmodel test: seed %d, %d operations (NG_MODEL_SEED=%d to reproduce)",
                        SEED, OPS, SEED))
    math.randomseed(SEED)
    local rt = ng.Runtime{ scales = { L1 = MUL[1], L3 = MUL[3], L8 = MUL[8] } }
    local T, C = rt.tokens, rt.connections

    -- the model
    local tokens, live = {}, {}     -- id -> record; ascending live ids
    local conns, conn_live = {}, {} -- id -> {from, to, type, pull, bidir}; ascending ids
    local by_key = {}               -- "from:to:type" -> connection id
    -- The id allocators, as docs/api.md ("Ids") describes them: freed slots wait in `pending`
    -- in the order they were freed; once more than 1024 wait (and `ready` is used up), they come
    -- back sorted, in a new epoch (the generation above the slot bits); else a fresh slot.
    local function allocator(bits)
      return { bits = bits, epoch = 0, fresh = 1, ready = {}, at = 1, pending = {} }
    end
    local function issue(a)
      local slot
      if a.at <= #a.ready then
        slot = a.ready[a.at]
        a.at = a.at + 1
      elseif #a.pending > 1024 then
        table.sort(a.pending)
        a.ready, a.pending, a.at, a.epoch = a.pending, {}, 2, a.epoch + 1
        slot = a.ready[1]
      else
        slot, a.fresh = a.fresh, a.fresh + 1
      end
      return h.bor(h.shl(a.epoch, a.bits), slot)
    end
    local function release(a, id) a.pending[#a.pending + 1] = h.band(id, h.shl(1, a.bits) - 1) end
    local tid_alloc, cid_alloc = allocator(24), allocator(32)
    local stale = {} -- handles of deleted tokens
    local step, op = 0, "?"
    local into = {}

    local function remove_sorted(list, id)
      local lo, hi = 1, #list
      while lo <= hi do
        local mid = math.floor((lo + hi) / 2)
        if list[mid] == id then table.remove(list, mid) return end
        if list[mid] < id then lo = mid + 1 else hi = mid - 1 end
      end
    end

    local function random_live(list)
      if #list == 0 or random() < 0.05 then return (list[#list] or 0) + random(1, 5) end -- missing
      return list[random(#list)]
    end

    local function new_coords()
      local coords = {}
      for s = 1, 8 do
        if random() < 0.5 then
          local xyz = {}
          for a = 1, 3 do
            local k = random(-20, 20)
            -- half the values sit on the lattice (the codec may truncate them one step down),
            -- half half-way inside a fixed-point step (they encode exactly)
            local v = k * UNIT[s]
            if random() < 0.5 and k ~= 0 then v = v + (k > 0 and 0.5 or -0.5) * decode(1, s) end
            xyz[a] = v
          end
          coords[ng.spaces[s]] = xyz
        end
      end
      return coords
    end

    local function apply_coords(rec, coords)
      for name, xyz in pairs(coords) do
        local s = ng.spaces[name]
        rec.raw[s] = {encode(xyz[1], s), encode(xyz[2], s), encode(xyz[3], s)}
      end
    end

    -- The connection a link a -> b of type ty (bidirectional or not) would duplicate: a -> b
    -- itself, or b -> a when either is bidirectional (an undirected link is found both ways).
    local function conflict(a, b, ty, bidir, except)
      local same = by_key[a .. ":" .. b .. ":" .. ty]
      if same and same ~= except then return same end
      local rev = by_key[b .. ":" .. a .. ":" .. ty]
      if rev and rev ~= except and (bidir or conns[rev].bidir) then return rev end
      return nil
    end

    -- The model's find(a, b, ty): a -> b, else a bidirectional b -> a.
    local function model_find(a, b, ty)
      local same = by_key[a .. ":" .. b .. ":" .. ty]
      if same then return same end
      local rev = by_key[b .. ":" .. a .. ":" .. ty]
      if rev and conns[rev].bidir then return rev end
      return nil
    end

    -- The model's links of token id: ascending connection ids matching dir/type/category
    -- (a bidirectional link is outgoing and incoming at both ends), and the other ends.
    local function model_links(id, dir, ty, cat)
      local ids, others = {}, {}
      for _, cid in ipairs(conn_live) do
        local c = conns[cid]
        local as_out, as_in = c.from == id, c.to == id
        local ok = (dir ~= "in" and (as_out or (as_in and c.bidir)))
                   or (dir ~= "out" and (as_in or (as_out and c.bidir)))
        if ok and (ty == nil or c.type == ty)
           and (cat == nil or h.shr(ng.connection_types[c.type], 4) == cat) then
          ids[#ids + 1] = cid
          others[#others + 1] = as_out and c.to or c.from
        end
      end
      return ids, others
    end

    -- The graph the walks see: per token, {other end, cost} of each link acting in dir, in
    -- ascending connection id order (a bidirectional link acts both ways, a self-link once).
    -- cost: nil for hops (1), else -ln(w) with w = pull / 10 clamped to 0..1 (math.huge for 0).
    local function model_adjacency(dir, weighted)
      local adj = {}
      for _, id in ipairs(live) do adj[id] = {} end
      for _, cid in ipairs(conn_live) do
        local c = conns[cid]
        local w = math.min(math.max(f32(c.pull) / 10, 0), 1)
        local cost = 1
        if weighted then cost = w > 0 and -math.log(w) or math.huge end
        local ends = c.from == c.to and { c.from } or { c.from, c.to }
        for _, x in ipairs(ends) do
          local as_out, as_in = c.from == x, c.to == x
          if (dir ~= "in" and (as_out or c.bidir)) or (dir ~= "out" and (as_in or c.bidir)) then
            local l = adj[x]
            l[#l + 1] = { as_out and c.to or c.from, cost, w }
          end
        end
      end
      return adj
    end

    -- Spreading activation as docs/api.md defines it, in the same order of operations.
    local function model_spread(src, o)
      local adj = model_adjacency(o.dir, false)
      local pass = 1 - o.decay
      local val, depth, parent = {}, {}, {}
      local origin, order
      if o.mode == "first" then
        local q, head = {}, 1
        for _, s in ipairs(src) do
          val[s], depth[s] = o.energy, 0
          q[#q + 1] = s
        end
        while head <= #q do
          local u = q[head]
          head = head + 1
          if depth[u] < o.max_depth then
            for _, l in ipairs(adj[u]) do
              local v = l[1]
              local t = val[u] * l[3] * pass
              if val[v] == nil and t >= 0.01 then
                val[v], depth[v], parent[v] = t, depth[u] + 1, u
                q[#q + 1] = v
              end
            end
          end
        end
        order = q
      else
        -- level by level: arrivals {slot, energy, best, parent arrival, depth}
        local arr, best_arr, reached = {}, {}, {}
        for _, s in ipairs(src) do
          arr[#arr + 1] = { s, o.energy, o.energy, nil, 0 }
          val[s], best_arr[s] = o.energy, #arr
          reached[#reached + 1] = s
        end
        local lo, hi = 1, #arr
        for d = 0, o.max_depth - 1 do
          if lo > hi then break end
          local at = {}
          for a = lo, hi do
            local u, eu = arr[a][1], arr[a][2]
            for _, l in ipairs(adj[u]) do
              local v = l[1]
              local t = eu * l[3] * pass
              if t >= 0.01 then
                if val[v] == nil then val[v] = 0 reached[#reached + 1] = v end
                local b = at[v]
                if not b then
                  arr[#arr + 1] = { v, 0, -1, nil, d + 1 }
                  b = #arr
                  at[v] = b
                end
                local x = arr[b]
                if o.mode == "sum" then x[2] = x[2] + t elseif t > x[2] then x[2] = t end
                if t > x[3] then x[3], x[4] = t, a end
              end
            end
          end
          for b = hi + 1, #arr do
            local v, ev = arr[b][1], arr[b][2]
            local p = best_arr[v]
            if o.mode == "sum" then val[v] = val[v] + ev elseif ev > val[v] then val[v] = ev end
            if p == nil or ev > arr[p][2] then best_arr[v] = b end
          end
          lo, hi = hi + 1, #arr
        end
        order = reached
        for _, v in ipairs(reached) do
          depth[v] = arr[best_arr[v]][5]
          parent[v] = best_arr[v] -- here the strongest arrival's index
        end
        origin = arr
      end
      local out = {}
      for _, v in ipairs(order) do
        if val[v] >= o.threshold then
          local path = {}
          if o.mode == "first" then
            local x = v
            while x do table.insert(path, 1, x) x = parent[x] end
          else
            local b = parent[v]
            while b do table.insert(path, 1, origin[b][1]) b = origin[b][4] end
          end
          out[#out + 1] = { id = v, energy = val[v], depth = depth[v], path = path }
        end
      end
      table.sort(out, function(p, q) return p.energy > q.energy or (p.energy == q.energy and p.id < q.id) end)
      return out
    end

    local function model_delete_connection(cid)
      local c = conns[cid]
      by_key[c.from .. ":" .. c.to .. ":" .. c.type] = nil
      conns[cid] = nil
      remove_sorted(conn_live, cid)
      release(cid_alloc, cid)
    end

    local function model_delete_token(id)
      tokens[id] = nil
      remove_sorted(live, id)
      release(tid_alloc, id)
      -- the store removes the token's outgoing connections, then its incoming ones, each in
      -- ascending id order: the order their slots are freed in
      local out, inn = {}, {}
      for _, cid in ipairs(conn_live) do
        local c = conns[cid]
        if c.from == id then out[#out + 1] = cid elseif c.to == id then inn[#inn + 1] = cid end
      end
      for _, cid in ipairs(out) do model_delete_connection(cid) end
      for _, cid in ipairs(inn) do model_delete_connection(cid) end
    end

    local function check_counts()
      if T:count() ~= #live then fail(step, op, "token count %d, model %d", T:count(), #live) end
      if C:count() ~= #conn_live then
        fail(step, op, "connection count %d, model %d", C:count(), #conn_live)
      end
    end

    local function check_token(id)
      local rec, tok = tokens[id], T:get(id)
      if not rec then
        if tok then fail(step, op, "token %d exists, model has none", id) end
        return
      end
      if not tok then fail(step, op, "token %d missing", id) end
      if tok.weight ~= rec.weight then fail(step, op, "token %d weight %s ~= %s", id, tok.weight, rec.weight) end
      if tok.flags ~= rec.flags then fail(step, op, "token %d flags %d ~= %d", id, tok.flags, rec.flags) end
      local spaces = {}
      for s = 1, 8 do
        local x, y, z = tok:coords(s)
        local r = rec.raw[s]
        if not r then
          if x ~= nil then fail(step, op, "token %d has coords in L%d, where it is not placed", id, s) end
        else
          spaces[#spaces + 1] = ng.spaces[s]
          if x ~= decode(r[1], s) or y ~= decode(r[2], s) or z ~= decode(r[3], s) then
            fail(step, op, "token %d L%d coords %s,%s,%s ~= raw %d,%d,%d", id, s, x, y, z, r[1], r[2], r[3])
          end
        end
      end
      if table.concat(tok:spaces(), ",") ~= table.concat(spaces, ",") then
        fail(step, op, "token %d spaces %s, model %s", id, table.concat(tok:spaces(), ","),
             table.concat(spaces, ","))
      end
    end

    local function full_check()
      local ids = T:list()
      if #ids ~= #live then fail(step, op, "list has %d ids, model %d", #ids, #live) end
      for i = 1, #live do
        if ids[i] ~= live[i] then fail(step, op, "list[%d] = %s, model %d", i, ids[i], live[i]) end
        check_token(live[i])
      end
      local k = 0
      for id in T:iter() do
        k = k + 1
        if id ~= live[k] then fail(step, op, "iter step %d gave %d, model %s", k, id, live[k]) end
      end
      if k ~= #live then fail(step, op, "iter visited %d tokens, model %d", k, #live) end
      local cids = C:list()
      for i = 1, #conn_live do
        local cid = conn_live[i]
        if cids[i] ~= cid then fail(step, op, "connections list[%d] = %s, model %d", i, cids[i], cid) end
        local c, m = C:get(cid), conns[cid]
        if c.from ~= m.from or c.to ~= m.to or c.type ~= m.type or c.pull_strength ~= m.pull
           or c.bidirectional ~= m.bidir then
          fail(step, op, "connection %d differs", cid)
        end
      end
      if #cids ~= #conn_live then fail(step, op, "connection list length") end
    end

    -- Distance in space s from token rec to the point c (decoded doubles).
    local function dist(rec, s, c)
      local r = rec.raw[s]
      local dx, dy, dz = decode(r[1], s) - c[1], decode(r[2], s) - c[2], decode(r[3], s) - c[3]
      return sqrt(dx * dx + dy * dy + dz * dz)
    end

    -- Whether token rec passes the filter fields of query options o (the defaults skip
    -- inactive tokens), read from the model's record, one rule at a time.
    local FLAG = ng.token_flags
    local function passes(o, id, rec)
      local fl = rec.flags
      if not o.inactive and h.band(fl, FLAG.ACTIVE) == 0 then return false end
      if o.entity ~= nil then
        local e, ok = h.band(h.shr(fl, 8), 15), false
        local list = type(o.entity) == "table" and o.entity or {o.entity}
        for _, want in ipairs(list) do
          if want == e or want == ng.entities[e] then ok = true end
        end
        if not ok then return false end
      end
      for _, name in ipairs(o.tags or {}) do
        if h.band(fl, FLAG[name]) == 0 then return false end
      end
      for _, name in ipairs(o.without or {}) do
        if h.band(fl, FLAG[name]) ~= 0 then return false end
      end
      if o.weight and (rec.weight < o.weight[1] or rec.weight > o.weight[2]) then return false end
      for _, x in ipairs(o.exclude or {}) do
        if x == id then return false end
      end
      return true
    end

    -- All model hits passing `keep` and the filter of options o (nil: the defaults),
    -- then o.where, sorted by (distance, id).
    local function model_hits(s, c, keep, o)
      o = o or {}
      local hits = {}
      for _, id in ipairs(live) do
        local rec = tokens[id]
        if rec.raw[s] and (keep == nil or keep(id, rec)) and passes(o, id, rec) then
          local d = dist(rec, s, c)
          if not o.where or o.where(id, f32(d)) then hits[#hits + 1] = {id, d} end
        end
      end
      table.sort(hits, function(p, q) if p[2] ~= q[2] then return p[2] < q[2] end return p[1] < q[1] end)
      return hits
    end

    -- Compares a store answer with the model's full sorted answer truncated to `cap`
    -- results (nil: all), tolerating float rounding at distance ties; with positions, each
    -- hit's {x, y, z} in space `want_positions`.
    local function compare_hits(actual, full, cap, want_positions)
      local n = #full
      if cap and cap < n then n = cap end
      if #actual ~= n then fail(step, op, "%d hits, model %d", #actual, n) end
      local d_of = {}
      for _, hit in ipairs(full) do d_of[hit[1]] = hit[2] end
      local seen = {}
      for i, hit in ipairs(actual) do
        local id, d = hit[1], hit[2]
        if seen[id] then fail(step, op, "hit %d twice", id) end
        seen[id] = true
        if not d_of[id] then fail(step, op, "hit %d is not in the model's answer", id) end
        if abs(d - d_of[id]) > TOL then fail(step, op, "hit %d distance %.9g, model %.9g", id, d, d_of[id]) end
        if want_positions then
          local r, ps = tokens[id].raw[want_positions], want_positions
          if hit[3] ~= decode(r[1], ps) or hit[4] ~= decode(r[2], ps) or hit[5] ~= decode(r[3], ps) then
            fail(step, op, "hit %d position %s,%s,%s ~= raw %d,%d,%d", id, hit[3], hit[4], hit[5],
                 r[1], r[2], r[3])
          end
        elseif #hit ~= 2 then
          fail(step, op, "hit %d has %d fields", id, #hit)
        end
        if i > 1 then
          local pd, pid = actual[i - 1][2], actual[i - 1][1]
          if d < pd then fail(step, op, "hits not sorted by distance at %d", i) end
          if d == pd and id < pid then fail(step, op, "tie at %g not ordered by id", d) end
        end
      end
      if n > 0 then
        local cutoff = full[n][2]
        for _, hit in ipairs(full) do
          if hit[2] < cutoff - TOL and not seen[hit[1]] then
            fail(step, op, "hit %d (distance %g) missing", hit[1], hit[2])
          end
        end
      end
    end

    -- A radius not within TOL of any distance, so float rounding cannot flip membership.
    local function safe_radius(s, c, r)
      for _ = 1, 8 do
        local ok = true
        for _, id in ipairs(live) do
          if tokens[id].raw[s] and abs(dist(tokens[id], s, c) - r) < 1e-3 * UNIT[s] then
            ok = false
            break
          end
        end
        if ok then return r end
        r = r + 0.37 * UNIT[s]
      end
      return r
    end

    local function random_point(s)
      return {random(-22, 22) * UNIT[s], random(-22, 22) * UNIT[s], random(-22, 22) * UNIT[s]}
    end

    local FLAG_NAMES = {"PERSISTENT", "MUTABLE", "DIRTY", "LOCKED", "USER_1", "USER_2", "USER_3",
                        "USER_4"}
    -- Random query options: space, limit, into, and about half the time some filter fields
    -- (each alone or together), a `where` predicate or positions.
    local function query_opts(s, with_limit)
      local o = { space = random() < 0.5 and ng.spaces[s] or s }
      if with_limit and random() < 0.4 then o.limit = random(1, 10) end
      if random() < 0.5 then o.into = into end
      if random() < 0.5 then return o end
      if random() < 0.3 then
        if random() < 0.5 then o.entity = random(0, 15)
        else o.entity = {ng.entities[random(0, 15)], random(0, 15), ng.entities[random(0, 15)]} end
      end
      if random() < 0.3 then o.tags = {FLAG_NAMES[random(#FLAG_NAMES)]} end
      if random() < 0.3 then o.without = {FLAG_NAMES[random(#FLAG_NAMES)], FLAG_NAMES[random(#FLAG_NAMES)]} end
      if random() < 0.3 then
        local lo = random(0, 32) / 8
        o.weight = {lo, lo + random(0, 16) / 8}
      end
      if random() < 0.3 then
        o.exclude = {}
        for i = 1, random(1, 40) do o.exclude[i] = random_live(live) end
      end
      if random() < 0.3 then o.inactive = true end
      if random() < 0.2 then
        local m = random(2, 4)
        o.where = function(id) return id % m ~= 0 end
      end
      if random() < 0.3 then o.positions = true end
      return o
    end
    local function positions_of(o, s) return o.positions and s or nil end

    local ops = {
      { 22, "create", function()
        local w = random(0, 32) / 8
        local fields = { weight = w, coords = new_coords() }
        local flags = 1
        if random() < 0.3 then flags = random(0, 0xFFFF); fields.flags = flags end
        local e = random(0, 15)
        if random() < 0.5 then fields.entity = ng.entities[e] else fields.entity = e end
        local id = T:create(fields)
        local want = issue(tid_alloc)
        if id ~= want then fail(step, op, "id %d, expected %d", id, want) end
        local rec = { weight = w, flags = h.bor(flags - h.band(flags, 0x0F00), h.shl(e, 8)), raw = {} }
        apply_coords(rec, fields.coords) -- placed only in the spaces given
        tokens[id] = rec
        live[#live + 1] = id
        check_token(id)
      end },
      { 8, "update", function()
        local id = random_live(live)
        local fields = {}
        if random() < 0.6 then fields.weight = random(0, 32) / 8 end
        if random() < 0.6 then fields.coords = new_coords() end
        if random() < 0.3 then fields.entity = random(0, 15) end
        local ok = T:update(id, fields)
        local rec = tokens[id]
        if ok ~= (rec ~= nil) then fail(step, op, "update(%d) returned %s", id, tostring(ok)) end
        if rec then
          if fields.weight then rec.weight = fields.weight end
          if fields.coords then apply_coords(rec, fields.coords) end
          if fields.entity then rec.flags = h.bor(rec.flags - h.band(rec.flags, 0x0F00), h.shl(fields.entity, 8)) end
          check_token(id)
        end
      end },
      { 5, "handle write", function()
        if #live == 0 then return end
        local id = live[random(#live)]
        local tok, rec = T:get(id), tokens[id]
        local pick = random()
        if pick < 0.4 then
          local w = random(0, 32) / 8
          tok.weight = w
          rec.weight = w
        elseif pick < 0.55 then
          local s = random(1, 8)
          tok:unplace(ng.spaces[s])
          rec.raw[s] = nil
        else
          local s = random(1, 8)
          local xyz = {random(-20, 20) * UNIT[s], random(-20, 20) * UNIT[s], random(-20, 20) * UNIT[s]}
          tok:set_coords(s, xyz[1], xyz[2], xyz[3])
          rec.raw[s] = {encode(xyz[1], s), encode(xyz[2], s), encode(xyz[3], s)}
        end
        check_token(id)
      end },
      { 7, "delete", function()
        local id = random_live(live)
        local handle = T:get(id)
        local ok = T:delete(id)
        if ok ~= (tokens[id] ~= nil) then fail(step, op, "delete(%d) returned %s", id, tostring(ok)) end
        if ok then
          stale[#stale < 64 and #stale + 1 or random(64)] = { id = id, handle = handle }
          model_delete_token(id)
        end
      end },
      { 0.05, "clear", function()
        local nt, nc = T:clear()
        if nt ~= #live or nc ~= #conn_live then fail(step, op, "clear returned %d, %d", nt, nc) end
        for _, cid in ipairs(conn_live) do release(cid_alloc, cid) end -- ascending, as the store
        for _, id in ipairs(live) do release(tid_alloc, id) end
        tokens, live, conns, conn_live, by_key = {}, {}, {}, {}, {}
      end },
      { 0.2, "save and load", function()
        -- the loaded runtime continues with exactly the ids the saved one would have issued
        local path = os.tmpname()
        assert(rt:save(path))
        local back = assert(ng.load(path))
        os.remove(path)
        rt:close()
        rt, T, C = back, back.tokens, back.connections
        stale = {}
        full_check()
      end },
      { 2, "stale id", function()
        -- a deleted token's id and handle stay dead, also after its slot was reused
        local s = #stale > 0 and stale[random(#stale)]
        if not s then return end
        if T:get(s.id) then fail(step, op, "stale id %d found", s.id) end
        if T:update(s.id, { weight = 1 }) or T:delete(s.id) then
          fail(step, op, "stale id %d updated or deleted", s.id)
        end
        local ok, err = pcall(function() return s.handle.weight end)
        if ok or not tostring(err):find("no longer exists", 1, true) then
          fail(step, op, "stale handle %d: %s", s.id, tostring(err))
        end
      end },
      { 12, "connect", function()
        local a, b = random_live(live), random_live(live)
        local ty = TYPES[random(#TYPES)]
        local pull = random(-40, 40) / 4
        local bidir = random() < 0.3
        local ok, res = pcall(C.create, C, a, b, { type = ty, pull_strength = pull, bidirectional = bidir })
        local key = a .. ":" .. b .. ":" .. ty
        if not tokens[a] or not tokens[b] then
          if ok or not tostring(res):find("does not exist", 1, true) then
            fail(step, op, "create(%d, %d) with a missing endpoint: %s", a, b, tostring(res))
          end
        elseif conflict(a, b, ty, bidir) then
          if ok or not tostring(res):find("already exists", 1, true) then
            fail(step, op, "duplicate create(%d, %d, %s): %s", a, b, ty, tostring(res))
          end
        else
          if not ok then fail(step, op, "create(%d, %d) raised %s", a, b, tostring(res)) end
          local want = issue(cid_alloc)
          if res ~= want then fail(step, op, "connection id %d, expected %d", res, want) end
          conns[res] = { from = a, to = b, type = ty, pull = pull, bidir = bidir }
          conn_live[#conn_live + 1] = res
          by_key[key] = res
        end
      end },
      { 5, "disconnect", function()
        local cid = random_live(conn_live)
        local ok = C:delete(cid)
        local m = conns[cid]
        if ok ~= (m ~= nil) then fail(step, op, "delete connection %d returned %s", cid, tostring(ok)) end
        if m then model_delete_connection(cid) end
      end },
      { 3, "connection update", function()
        local cid = random_live(conn_live)
        local pull = random(-40, 40) / 4
        local ok = C:update(cid, { pull_strength = pull })
        if ok ~= (conns[cid] ~= nil) then fail(step, op, "update connection %d returned %s", cid, tostring(ok)) end
        if ok then
          conns[cid].pull = pull
          if C:get(cid).pull_strength ~= pull then fail(step, op, "pull_strength not written") end
        end
      end },
      { 3, "set bidirectional", function()
        -- making a link undirected may duplicate the link the other way; clearing it never does
        local cid = random_live(conn_live)
        local m = conns[cid]
        local bidir = random() < 0.6
        local ok, res = pcall(C.update, C, cid, { bidirectional = bidir })
        if not m then
          if not ok or res ~= false then
            fail(step, op, "update of missing connection %d: %s", cid, tostring(res))
          end
          return
        end
        local dup = bidir and not m.bidir and conflict(m.from, m.to, m.type, true, cid)
        if dup then
          if ok or not tostring(res):find("already", 1, true) then
            fail(step, op, "bidirectional %d beside %d: %s", cid, dup, tostring(res))
          end
        else
          if not ok or res ~= true then fail(step, op, "set bidirectional on %d: %s", cid, tostring(res)) end
          m.bidir = bidir
        end
      end },
      { 4, "find", function()
        local a, b = random_live(live), random_live(live)
        local ty = TYPES[random(#TYPES)]
        if not tokens[a] or not tokens[b] then return end
        local got, want = C:find(a, b, ty), model_find(a, b, ty)
        if got ~= want then
          fail(step, op, "find(%d, %d, %s) = %s, model %s", a, b, ty, tostring(got), tostring(want))
        end
      end },
      { 2, "graph bfs", function()
        local id = random_live(live)
        local dir = ({"out", "in", "both"})[random(3)]
        local depth = random() < 0.5 and random(1, 4) or nil
        local got, msg = rt.graph:bfs(id, { dir = dir, max_depth = depth })
        if not tokens[id] then
          if got ~= nil or not tostring(msg):find("not found", 1, true) then
            fail(step, op, "bfs from missing %d: %s", id, tostring(msg))
          end
          return
        end
        local adj = model_adjacency(dir, nil)
        local want, seen, head = { {id, 0} }, { [id] = true }, 1
        while head <= #want do
          local u, d = want[head][1], want[head][2]
          head = head + 1
          if not depth or d < depth then
            for _, l in ipairs(adj[u] or {}) do
              if not seen[l[1]] then
                seen[l[1]] = true
                want[#want + 1] = { l[1], d + 1 }
              end
            end
          end
        end
        if #got ~= #want then fail(step, op, "bfs from %d: %d tokens, model %d", id, #got, #want) end
        for i = 1, #want do
          if got[i][1] ~= want[i][1] or got[i][2] ~= want[i][2] then
            fail(step, op, "bfs from %d: entry %d is %d@%d, model %d@%d", id, i, got[i][1], got[i][2],
                 want[i][1], want[i][2])
          end
        end
      end },
      { 2, "graph path", function()
        local a, b = random_live(live), random_live(live)
        local dir = ({"out", "in", "both"})[random(3)]
        local weighted = random() < 0.5
        local opts = { dir = dir, cost = weighted and "weight" or "hops",
                       field = weighted and "pull_strength" or nil }
        local got, cost = rt.graph:path(a, b, opts)
        if not tokens[a] or not tokens[b] then
          if got ~= nil then fail(step, op, "path between missing tokens %d, %d", a, b) end
          return
        end
        -- Dijkstra by brute force: settle the cheapest open token (ties: the smaller id)
        local adj = model_adjacency(dir, weighted)
        local reach, pred, done = { [a] = 0 }, {}, {}
        while true do
          local u
          for v, d in pairs(reach) do
            if not done[v] and (u == nil or d < reach[u] or (d == reach[u] and v < u)) then u = v end
          end
          if u == nil or u == b then break end
          done[u] = true
          for _, l in ipairs(adj[u]) do
            local v, c = l[1], l[2]
            if c < math.huge and not done[v] then
              local nd = reach[u] + c
              if reach[v] == nil or nd < reach[v] then reach[v], pred[v] = nd, u
              elseif nd == reach[v] and u < pred[v] then pred[v] = u end
            end
          end
        end
        if reach[b] == nil then
          if got ~= nil then fail(step, op, "path %d -> %d found, model has none", a, b) end
          return
        end
        if got == nil then fail(step, op, "no path %d -> %d, model costs %s", a, b, reach[b]) end
        if abs(cost - reach[b]) > 1e-9 then
          fail(step, op, "path %d -> %d costs %s, model %s", a, b, cost, reach[b])
        end
        -- the path is a chain of allowed links adding up to its cost; with hops (no zero costs)
        -- it is exactly the model's: each token reached through its smallest-id predecessor
        local sum = 0
        for i = 2, #got do
          local best = math.huge
          for _, l in ipairs(adj[got[i - 1]]) do
            if l[1] == got[i] and l[2] < best then best = l[2] end
          end
          if best == math.huge then fail(step, op, "path %d -> %d: no link %d -> %d", a, b, got[i - 1], got[i]) end
          sum = sum + best
        end
        if got[1] ~= a or got[#got] ~= b or abs(sum - cost) > 1e-9 then
          fail(step, op, "path %d -> %d does not add up", a, b)
        end
        if not weighted then
          local want, v = {}, b
          while v do table.insert(want, 1, v) v = pred[v] end
          if table.concat(want, ",") ~= table.concat(got, ",") then
            fail(step, op, "path %d -> %d is %s, model %s", a, b, table.concat(got, ","), table.concat(want, ","))
          end
        end
      end },
      { 2, "graph spread", function()
        local src = { random_live(live) }
        if random() < 0.3 then src[2] = random_live(live) end
        if src[2] == src[1] then src[2] = nil end
        local mode = ({"first", "sum", "max"})[random(3)]
        local dir = random() < 0.7 and "out" or "both"
        local opts = { mode = mode, dir = dir, field = "pull_strength", energy = random(1, 40) / 4,
                       max_depth = random(1, 5), decay = random(0, 4) / 10, threshold = random(0, 4) / 10 }
        local got, msg = rt.graph:spread(src, opts)
        for _, s in ipairs(src) do
          if not tokens[s] then
            if got ~= nil or not tostring(msg):find("not found", 1, true) then
              fail(step, op, "spread from missing %d: %s", s, tostring(msg))
            end
            return
          end
        end
        local want = model_spread(src, opts)
        if #got ~= #want then fail(step, op, "spread: %d tokens, model %d", #got, #want) end
        for i = 1, #want do
          local g, w = got[i], want[i]
          if g.id ~= w.id or abs(g.energy - w.energy) > 1e-9 or g.depth ~= w.depth
             or table.concat(g.path, ",") ~= table.concat(w.path, ",") then
            fail(step, op, "spread %s entry %d: %d %.17g %d [%s], model %d %.17g %d [%s]", mode, i,
                 g.id, g.energy, g.depth, table.concat(g.path, ","), w.id, w.energy, w.depth,
                 table.concat(w.path, ","))
          end
        end
      end },
      { 4, "links", function()
        local id = random_live(live)
        if not tokens[id] then return end
        local tok = T:get(id)
        local dir = ({"out", "in", "both"})[random(3)]
        local ty = random() < 0.4 and TYPES[random(#TYPES)] or nil
        local cat = random() < 0.3 and random(0, 10) or nil
        local opts = {dir = dir, type = ty, category = cat and (random() < 0.5 and ng.categories[cat] or cat)}
        if random() < 0.2 and not ty and not cat then opts = dir end
        local want, others = model_links(id, dir, ty, cat)
        local got = tok:connections(opts)
        if #got ~= #want then fail(step, op, "connections of %d: %d, model %d", id, #got, #want) end
        for i = 1, #want do
          if got[i] ~= want[i] then
            fail(step, op, "connections of %d [%d] = %s, model %d", id, i, tostring(got[i]), want[i])
          end
        end
        if tok:degree(opts) ~= #want then fail(step, op, "degree of %d", id) end
        table.sort(others)
        local uniq = {}
        for _, o in ipairs(others) do if uniq[#uniq] ~= o then uniq[#uniq + 1] = o end end
        local nb = tok:neighbours(opts)
        if #nb ~= #uniq then fail(step, op, "neighbours of %d: %d, model %d", id, #nb, #uniq) end
        for i = 1, #uniq do
          if nb[i] ~= uniq[i] then fail(step, op, "neighbours of %d [%d]", id, i) end
        end
      end },
      { 12, "range_query", function()
        local s = random(1, 8)
        local c = random_point(s)
        local r = safe_radius(s, c, random(0, 12) * UNIT[s] + 0.5 * UNIT[s])
        local o = query_opts(s, true)
        local full = model_hits(s, c, function(_, rec) return dist(rec, s, c) <= r end, o)
        compare_hits(rt.grid:range_query(c, r, o), full, o.limit, positions_of(o, s))
      end },
      { 8, "find_neighbors", function()
        local id = random_live(live)
        local s = random(1, 8)
        local r = random(0, 12) * UNIT[s] + 0.5 * UNIT[s]
        local o = query_opts(s, true)
        if not tokens[id] then
          local ok, err = pcall(rt.grid.find_neighbors, rt.grid, id, r, o)
          if ok or not tostring(err):find("does not exist", 1, true) then
            fail(step, op, "find_neighbors of missing token %d: %s", id, tostring(err))
          end
          return
        end
        local rec = tokens[id]
        if not rec.raw[s] then
          local ok, err = pcall(rt.grid.find_neighbors, rt.grid, id, r, o)
          if ok or not tostring(err):find("is not placed in", 1, true) then
            fail(step, op, "find_neighbors of token %d, not placed in L%d: %s", id, s, tostring(err))
          end
          return
        end
        local c = {decode(rec.raw[s][1], s), decode(rec.raw[s][2], s), decode(rec.raw[s][3], s)}
        r = safe_radius(s, c, r)
        local full = model_hits(s, c, function(other, orec) return other ~= id and dist(orec, s, c) <= r end, o)
        compare_hits(rt.grid:find_neighbors(id, r, o), full, o.limit, positions_of(o, s))
      end },
      { 7, "nearest", function()
        local s = random(1, 8)
        local c = random_point(s)
        local k = random(0, 12)
        local o = query_opts(s, false)
        compare_hits(rt.grid:nearest(c, k, o), model_hits(s, c, nil, o), k, positions_of(o, s))
      end },
      { 5, "nearest_to", function()
        local id = random_live(live)
        local s = random(1, 8)
        local k = random(0, 12)
        local o = query_opts(s, false)
        if not tokens[id] then
          local ok, err = pcall(rt.grid.nearest_to, rt.grid, id, k, o)
          if ok or not tostring(err):find("does not exist", 1, true) then
            fail(step, op, "nearest_to of missing token %d: %s", id, tostring(err))
          end
          return
        end
        local rec = tokens[id]
        if not rec.raw[s] then
          local ok, err = pcall(rt.grid.nearest_to, rt.grid, id, k, o)
          if ok or not tostring(err):find("is not placed in", 1, true) then
            fail(step, op, "nearest_to of token %d, not placed in L%d: %s", id, s, tostring(err))
          end
          return
        end
        local c = {decode(rec.raw[s][1], s), decode(rec.raw[s][2], s), decode(rec.raw[s][3], s)}
        local full = model_hits(s, c, function(other) return other ~= id end, o)
        compare_hits(rt.grid:nearest_to(id, k, o), full, k, positions_of(o, s))
      end },
      { 6, "box", function()
        local s = random(1, 8)
        local lo, hi = {}, {}
        for a = 1, 3 do
          local p, q = random(-22, 22), random(-22, 22)
          if p > q then p, q = q, p end
          lo[a], hi[a] = (p - 0.5) * UNIT[s], (q + 0.5) * UNIT[s]
        end
        local centre = {(lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2, (lo[3] + hi[3]) / 2}
        local o = query_opts(s, true)
        local full = model_hits(s, centre, function(_, rec)
          for a = 1, 3 do
            local v = decode(rec.raw[s][a], s)
            if v < lo[a] or v > hi[a] then return false end
          end
          return true
        end, o)
        compare_hits(rt.grid:box(lo, hi, o), full, o.limit, positions_of(o, s))
      end },
      { 3, "list", function()
        local limit, offset = random(0, 20), random(0, #live + 2)
        local page = T:list(limit, offset)
        local want = {}
        for i = offset + 1, math.min(offset + limit, #live) do want[#want + 1] = live[i] end
        if #page ~= #want then fail(step, op, "page length %d, model %d", #page, #want) end
        for i = 1, #want do if page[i] ~= want[i] then fail(step, op, "page[%d]", i) end end
      end },
      { 4, "get", function()
        check_token(random_live(live))
      end },
      { 2, "bad input", function()
        local choice = random(1, 3)
        local ok
        if choice == 1 then
          ok = pcall(T.create, T, { weight = 0 / 0 })
        elseif choice == 2 then
          ok = pcall(T.create, T, { coords = { L1 = {400 * MUL[1], 0, 0} } })
        else
          if #live == 0 then return end
          ok = pcall(T.update, T, live[1], { weight = 0.5, flags = -1 })
        end
        if ok then fail(step, op, "bad input %d was accepted", choice) end
        if #live > 0 then check_token(live[1]) end
      end },
    }

    -- Transactions: a few of the writes above (and queries, which see the transaction's own
    -- writes) inside rt:atomic, committed, or rolled back by an error; the model keeps a copy to
    -- go back to. A nested rt:atomic that fails inside a committed one undoes only its own writes.
    local in_txn = {}
    for _, o in ipairs(ops) do
      local name = o[2]
      if name == "create" or name == "update" or name == "handle write" or name == "delete"
          or name == "connect" or name == "disconnect" or name == "connection update"
          or name == "get" or name == "range_query" then
        in_txn[#in_txn + 1] = o
      end
    end
    local function deep_copy(v)
      if type(v) ~= "table" then return v end
      local c = {}
      for k, x in pairs(v) do c[k] = deep_copy(x) end
      return c
    end
    local function save_model()
      local stale_copy = {}
      for i, x in ipairs(stale) do stale_copy[i] = x end
      return { deep_copy(tokens), deep_copy(live), deep_copy(conns), deep_copy(conn_live),
               deep_copy(by_key), deep_copy(tid_alloc), deep_copy(cid_alloc), stale_copy }
    end
    local function restore_model(m)
      tokens, live, conns, conn_live, by_key, tid_alloc, cid_alloc, stale =
        m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
    end
    local function run_some(n)
      for _ = 1, n do in_txn[random(#in_txn)][3]() end
    end
    local rollback = setmetatable({}, { __tostring = function() return "rollback" end })
    local txn_counts = { commit = 0, rollback = 0, nested = 0 }
    ops[#ops + 1] = { 2, "transaction", function()
      local saved = save_model()
      local outcome = random(1, 3)
      local ok, err = pcall(rt.atomic, rt, function()
        run_some(random(1, 12))
        if outcome == 3 then -- a nested transaction that fails, caught inside the outer one
          local inner = save_model()
          local iok, ierr = pcall(rt.atomic, rt, function()
            run_some(random(1, 8))
            error(rollback)
          end)
          if iok or ierr ~= rollback then fail(step, op, "nested atomic: %s", tostring(ierr)) end
          restore_model(inner)
          txn_counts.nested = txn_counts.nested + 1
          full_check()
          run_some(random(0, 4))
        end
        if outcome == 2 then error(rollback) end
        return "done"
      end)
      if outcome == 2 then
        if ok or err ~= rollback then fail(step, op, "rollback: %s", tostring(err)) end
        restore_model(saved)
        txn_counts.rollback = txn_counts.rollback + 1
      else
        if not ok or err ~= "done" then fail(step, op, "commit: %s", tostring(err)) end
        txn_counts.commit = txn_counts.commit + 1
      end
      if outcome ~= 1 then full_check() end
    end }

    local total = 0
    for _, o in ipairs(ops) do total = total + o[1] end
    local counts = {}
    for i = 1, OPS do
      step = i
      local pick, acc = random() * total, 0
      local chosen = ops[#ops]
      -- keep the store between roughly 100 and 400 tokens
      if #live > 400 then chosen = ops[4] elseif #live < 100 and random() < 0.3 then chosen = ops[1]
      else
        for _, o in ipairs(ops) do
          acc = acc + o[1]
          if pick < acc then chosen = o break end
        end
      end
      op = chosen[2]
      counts[op] = (counts[op] or 0) + 1
      chosen[3]()
      check_counts()
      if i % FULL_CHECK_EVERY == 0 then full_check() end
    end
    full_check()
    rt:close()
    -- the run must have reused slots, or it proved nothing about reuse
    assert.is_true(tid_alloc.epoch > 0, "no token slot was reused")
    assert.is_true(cid_alloc.epoch > 0, "no connection slot was reused")
    for _, o in ipairs(ops) do
      assert.is_true((counts[o[2]] or 0) > 0 or o[2] == "clear", "never ran " .. o[2])
    end
    for kind, n in pairs(txn_counts) do assert.is_true(n > 0, "no transaction ended in " .. kind) end
  end)
end)
