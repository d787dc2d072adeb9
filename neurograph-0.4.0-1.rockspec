-- LuaRocks: `luarocks make` builds the Lua module (neurograph.so, the C core included) with
-- CMake for the Lua LuaRocks runs for (5.4, 5.3, 5.1; a 5.1 rock also loads in LuaJIT) and
-- installs that one file. Only the module: not the shared library, whose version symlinks
-- LuaRocks cannot install, nor headers or ngrun (`cmake --install` gives those).
--   luarocks --lua-version=5.4 make --tree /tmp/rocks
--   luarocks --lua-version=5.1 make --tree /tmp/rocks LUA_INCDIR=/usr/include/luajit-2.1  (LuaJIT)
rockspec_format = "3.0"
package = "neurograph"
version = "0.4.0-1"
source = {
  url = ".", -- built from a checkout with `luarocks make`; no published source archive yet
}
description = {
  summary = "Embeddable spatial-semantic store: tokens, connections, a spatial grid",
  detailed = [[
A C11 storage runtime (tokens in eight coordinate spaces, typed connections, a spatial grid
with range and nearest queries, snapshots) with its Lua binding, for Lua 5.1 to 5.4 and LuaJIT.]],
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
build_dependencies = {}
build = {
  type = "command",
  -- NG_LUA=custom: the headers of the Lua LuaRocks builds for; the module links no Lua.
  build_command = [[cmake -E remove_directory build.luarocks && ]]
    .. [[cmake -S . -B build.luarocks -DCMAKE_BUILD_TYPE=Release -DNG_LUA=custom ]]
    .. [[-DNG_LUA_INCLUDE_DIR="$(LUA_INCDIR)" -DNG_BUILD_TESTS=OFF -DNG_BUILD_EXAMPLES=OFF ]]
    .. [[&& cmake --build build.luarocks --target neurograph_lua_module --parallel 2]],
  install = {
    lib = { neurograph = "build.luarocks/neurograph.so" },
  },
}
