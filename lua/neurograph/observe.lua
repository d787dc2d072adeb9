-- Seeing a world (ng.observe): rt:plot{} as SVG, and the one-line rendering of tokens and
-- connections the REPL prints. Runtime methods are installed
-- from `runtime_methods` by luaopen_neurograph; nothing here is on a hot path.
local _, ng = ...

local observe = { runtime_methods = {} }
local function math_type(v) -- math.type is 5.3+; ng.util may load after this file
  return ng.util.math_type(v)
end

local function fmt_number(v)
  if math_type(v) == "integer" then return tostring(v) end
  if v ~= v then return "NaN" end
  if v == math.huge then return "+Inf" end
  if v == -math.huge then return "-Inf" end
  return string.format("%.14g", v)
end

-- ---- SVG plot ----------------------------------------------------------------------------

-- Colour-blind-safe palette (Okabe-Ito, then Tol's bright) for up to 16 categories.
local palette = { "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
  "#000000", "#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB", "#882255" }

local function xml_escape(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local axis_index = { x = 1, y = 2, z = 3 }

-- A "nice" scale-bar length (1, 2 or 5 x 10^k) about a fifth of `span`.
local function nice_length(span)
  if span <= 0 then return 1 end
  local target = span / 5
  local p = 10 ^ math.floor(math.log(target, 10))
  for _, m in ipairs({ 5, 2, 1 }) do
    if m * p <= target then return m * p end
  end
  return p
end

local function check_opts(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'plot' (table expected, got " .. type(opts) .. ")", 3)
  end
  local space = opts.space or "L1"
  local sname = (type(space) == "string" or math_type(space) == "integer") and ng.util.space_name(space)
  if not sname then error("plot: space must be a space name (\"L1\"..\"L8\" or an alias) or 1..8", 3) end
  local axes = opts.axes or "xy"
  if type(axes) ~= "string" or #axes ~= 2 or not axis_index[axes:sub(1, 1)]
      or not axis_index[axes:sub(2, 2)] or axes:sub(1, 1) == axes:sub(2, 2) then
    error('plot: axes must be two different letters of "xyz", such as "xy"', 3)
  end
  if type(opts.path) ~= "string" or opts.path == "" then error("plot: path must be a non-empty string", 3) end
  local colour = opts.colour or opts.color or "entity"
  if colour ~= "entity" and colour ~= "tag" then error('plot: colour must be "entity" or "tag"', 3) end
  local size = opts.size or 800
  if math_type(size) ~= "integer" or size < 100 or size > 10000 then
    error("plot: size must be an integer within 100..10000", 3)
  end
  if opts.tag ~= nil and type(opts.tag) ~= "function" then
    error("plot: tag must be a function(token) returning a string", 3)
  end
  if colour == "tag" and opts.tag == nil then error('plot: colour = "tag" needs tag = function(token)', 3) end
  return sname, axis_index[axes:sub(1, 1)], axis_index[axes:sub(2, 2)], axes, colour, size
end

--- rt:plot{space = "L1", axes = "xy", path = "world.svg", colour = "entity" | "tag",
--- tag = function(tok) -> string, connections = false, size = 800} -> path, or nil plus a
--- message when the file cannot be written. An SVG of the tokens placed in the space: one
--- <circle> per token, coloured by entity (or by the string tag(tok) returns), optional
--- connection lines between tokens both in the view, a legend and a scale bar.
function observe.plot(rt, opts)
  local sname, ia, ib, axes, colour, size = check_opts(opts)
  local pts, by_id = {}, {}
  local lo_a, hi_a, lo_b, hi_b = math.huge, -math.huge, math.huge, -math.huge
  for id, tok in rt.tokens:iter() do
    local c = { tok:coords(sname) }
    if c[1] ~= nil then
      local key = colour == "entity" and tok.entity or tostring(opts.tag(tok))
      local p = { id = id, a = c[ia], b = c[ib], key = key }
      pts[#pts + 1] = p
      by_id[id] = p
      lo_a, hi_a = math.min(lo_a, p.a), math.max(hi_a, p.a)
      lo_b, hi_b = math.min(lo_b, p.b), math.max(hi_b, p.b)
    end
  end
  if #pts == 0 then lo_a, hi_a, lo_b, hi_b = 0, 1, 0, 1 end
  local span = math.max(hi_a - lo_a, hi_b - lo_b)
  if span <= 0 then span = 1 end
  local margin, legend_w = size * 0.06, size * 0.22
  local plot_w = size - legend_w - 2 * margin
  local k = plot_w / span
  local function px(a) return margin + (a - lo_a) * k end
  local function py(b) return size - margin - (b - lo_b) * k end -- y grows upwards

  local keys, colour_of = {}, {}
  for _, p in ipairs(pts) do
    if not colour_of[p.key] then
      keys[#keys + 1] = p.key
      colour_of[p.key] = true
    end
  end
  table.sort(keys)
  for i, key in ipairs(keys) do colour_of[key] = palette[(i - 1) % #palette + 1] end

  local out = {
    '<?xml version="1.0" encoding="UTF-8"?>',
    string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">',
      size, size, size, size),
    string.format('<title>neurograph: %s, axes %s, %d tokens</title>', sname, axes, #pts),
    string.format('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>', size, size),
    string.format('<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="none" stroke="#cccccc"/>',
      margin / 2, margin / 2, plot_w + margin, size - margin),
  }
  if opts.connections then
    out[#out + 1] = '<g stroke="#888888" stroke-width="1" stroke-opacity="0.6">'
    for _, c in rt.connections:iter() do
      local f, t = by_id[c.from], by_id[c.to]
      if f and t then
        out[#out + 1] = string.format('<line x1="%.2f" y1="%.2f" x2="%.2f" y2="%.2f"/>',
          px(f.a), py(f.b), px(t.a), py(t.b))
      end
    end
    out[#out + 1] = "</g>"
  end
  local r = math.max(2, size / 160)
  out[#out + 1] = '<g stroke="#333333" stroke-width="0.5">'
  for _, p in ipairs(pts) do
    out[#out + 1] = string.format('<circle cx="%.2f" cy="%.2f" r="%.2f" fill="%s"><title>Token %d</title></circle>',
      px(p.a), py(p.b), r, colour_of[p.key], p.id)
  end
  out[#out + 1] = "</g>"
  -- the legend: one swatch per entity or tag
  local lx, font = size - legend_w, math.max(10, size / 60)
  out[#out + 1] = string.format('<g font-family="sans-serif" font-size="%.1f" fill="#222222">', font)
  out[#out + 1] = string.format('<text x="%.2f" y="%.2f" font-weight="bold">%s</text>', lx, margin, colour)
  for i, key in ipairs(keys) do
    local y = margin + i * font * 1.6
    out[#out + 1] = string.format('<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>',
      lx, y - font * 0.8, font, font, colour_of[key])
    out[#out + 1] = string.format('<text x="%.2f" y="%.2f">%s</text>', lx + font * 1.5, y, xml_escape(key))
  end
  -- the scale bar, in the space's units
  local len = nice_length(span)
  local sx, sy = margin, size - margin / 3
  out[#out + 1] = string.format('<line x1="%.2f" y1="%.2f" x2="%.2f" y2="%.2f" stroke="#222222" stroke-width="2"/>',
    sx, sy, sx + len * k, sy)
  out[#out + 1] = string.format('<text x="%.2f" y="%.2f">%s (%s, axes %s)</text>',
    sx + len * k + font / 2, sy + font / 3, fmt_number(len), sname, axes)
  out[#out + 1] = "</g>"
  out[#out + 1] = "</svg>"
  local f, err = io.open(opts.path, "w")
  if not f then return nil, err end
  local ok, werr = f:write(table.concat(out, "\n"), "\n")
  f:close()
  if not ok then return nil, werr end
  return opts.path
end
observe.runtime_methods.plot = observe.plot

-- ---- readable values (the REPL) ------------------------------------------------------------

local function is_a(v, name)
  local mt = getmetatable(v)
  return type(v) == "userdata" and type(mt) == "table" and mt.__name == name
end

--- "Token 12 {L1 = (1, 2, 3), weight = 0.5}": the token's id, its position in each space it is
--- placed in and its weight; "Token 12 (deleted)" when it no longer exists.
function observe.format_token(tok)
  if not tok:exists() then return string.format("Token %d (deleted)", tok.id) end
  local parts = {}
  for _, s in ipairs(tok:spaces()) do
    local x, y, z = tok:coords(s)
    parts[#parts + 1] = string.format("%s = (%s, %s, %s)", s, fmt_number(x), fmt_number(y), fmt_number(z))
  end
  parts[#parts + 1] = "weight = " .. fmt_number(tok.weight)
  return string.format("Token %d {%s}", tok.id, table.concat(parts, ", "))
end

--- The REPL's rendering of any value: tokens as format_token, connections as
--- "Connection 3 {1 -> 2, type = AssociatedWith}", tables through ng.util.pretty, the rest
--- (strings included, unquoted, as the stock REPL prints them) with tostring.
function observe.show(v)
  if is_a(v, "neurograph.Token") then return observe.format_token(v) end
  if is_a(v, "neurograph.Connection") then
    local ok, text = pcall(function()
      return string.format("Connection %d {%d -> %d, type = %s}", v.id, v.from, v.to, v.type)
    end)
    return ok and text or string.format("Connection %d (deleted)", v.id)
  end
  if type(v) == "table" then return ng.util.pretty(v) end
  return tostring(v)
end

return observe
