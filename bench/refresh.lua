-- Refresh as clients do: each session (BENCH_SESSIONS: "token,csrf;token,csrf;..." — csrf only
-- for trikchi) refreshes in a loop, one request at a time, sending the refresh token of its
-- previous answer. BENCH_REFRESH_FLAVOUR says how a server takes the token and answers:
--
--   trikchi         cookie refresh_token + double-submit CSRF (cookie and X-CSRF-TOKEN); the
--                   rotated cookie in the answer, the session's CSRF value in its body
--   flask-security  cookie fs_refresh, a JSON body; the rotated cookie in the answer
--   allauth         {"refresh_token": ...}; the rotated token in the answer's body
--   seed            cookie refresh_token; not rotated: the same cookie every time
--
-- A rotating answer carries everything the session's next request needs, so a session needs no
-- name: a request takes any ready session, its answer puts the rotated one back. Each of the
-- BENCH_THREADS wrk threads drives its share of the sessions over as many connections. (One
-- thread per session cost the client ~20 % more CPU per request on this 2-core machine than
-- the two threads of every other load.)
local sessions = {}
for line in string.gmatch(os.getenv("BENCH_SESSIONS"), "[^;]+") do
  local token, csrf = string.match(line, "^([^,]+),?([^,]*)$")
  table.insert(sessions, {token = token, csrf = csrf})
end

local json = {["Content-Type"] = "application/json"}
local flavours = {
  trikchi = {
    request = function(s)
      return wrk.format("POST", nil, {
        ["Cookie"] = "refresh_token=" .. s.token .. "; csrf_refresh_token=" .. s.csrf,
        ["X-CSRF-TOKEN"] = s.csrf,
      })
    end,
    -- wrk keeps one header per name: trikchi sends the refresh cookie last.
    answer = function(headers, body)
      local token = string.match(headers["Set-Cookie"] or "", "^refresh_token=([^;]+)")
      local csrf = string.match(body, '"csrf_token":"([^"]+)"')
      return token and csrf and {token = token, csrf = csrf}
    end,
  },
  ["flask-security"] = {
    request = function(s)
      return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Cookie"] = "fs_refresh=" .. s.token}, "{}")
    end,
    answer = function(headers, body)
      local token = string.match(headers["Set-Cookie"] or "", "^fs_refresh=([^;]+)")
      return token and {token = token}
    end,
  },
  allauth = {
    request = function(s)
      return wrk.format("POST", nil, json, '{"refresh_token": "' .. s.token .. '"}')
    end,
    answer = function(headers, body)
      local token = string.match(body, '"refresh_token":%s*"([^"]+)"')
      return token and {token = token}
    end,
  },
  seed = {
    request = function(s)
      return wrk.format("POST", nil, {["Cookie"] = "refresh_token=" .. s.token})
    end,
    answer = nil, -- not rotated: sessions are reused in turn
  },
}
local flavour = flavours[os.getenv("BENCH_REFRESH_FLAVOUR")]
assert(flavour, "BENCH_REFRESH_FLAVOUR must be one of trikchi, flask-security, allauth, seed")
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("index", counter)
end

init = function(args)
  local threads = tonumber(os.getenv("BENCH_THREADS") or "")
  assert(threads, "BENCH_THREADS must be the thread count given to wrk (-t)")
  ready = {}
  for i = index, #sessions, threads do
    table.insert(ready, sessions[i])
  end
  position = 0
  -- wrk calls request() once on its first thread before connecting, to check it: no send.
  checking = index == 1
end

-- A session whose answer carried no token (a refusal) is out of the loop; a connection left
-- without a session sends a request that is refused, and counts as non-2xx.
local spent = {token = "spent", csrf = "spent"}

request = function()
  local s
  if flavour.answer == nil then
    position = position % #ready + 1
    s = ready[position]
  elseif checking then
    checking, s = false, ready[1]
  else
    s = table.remove(ready, 1) or spent
  end
  return flavour.request(s)
end

response = function(status, headers, body)
  if flavour.answer ~= nil and status == 200 then
    local s = flavour.answer(headers, body or "")
    if s then table.insert(ready, s) end
  end
end
