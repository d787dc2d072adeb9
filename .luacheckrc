-- luacheck configuration (Debian: lua-check). Run: luacheck .
std = "lua54"
max_line_length = 120
exclude_files = { "build*/**", "install*/**" }
files["spec/**/*_spec.lua"] = { std = "+busted" }
files["spec/helpers.lua"] = { std = "+busted" }
-- ngrun puts the host's runtime in the global `runtime`.
files["examples/**/*.lua"] = { read_globals = { "runtime" } }
files["bench/**/*.lua"] = { read_globals = { "runtime" } }
-- examples/love runs in LÖVE 11 (LuaJIT), which provides the global `love`.
files["examples/love/*.lua"] = { std = "luajit+love" }
