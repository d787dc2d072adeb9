-- LÖVE 11 configuration of the neurograph example (see main.lua).
function love.conf(t)
  t.identity = "neurograph-example"
  t.version = "11.0" -- any LÖVE 11
  t.window.title = "neurograph: agents perceiving through the grid"
  t.window.width, t.window.height = 800, 600
  t.window.vsync = 0 -- the test mode measures frames per second
  t.modules.audio, t.modules.sound, t.modules.joystick, t.modules.physics = false, false, false, false
end
