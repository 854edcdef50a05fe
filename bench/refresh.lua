-- POST /auth/refresh_token as browsers do: each session (BENCH_SESSIONS) refreshes in a loop,
-- one request at a time, sending its cookie and CSRF header and keeping the rotated cookie of
-- every answer. Each of the BENCH_THREADS wrk threads drives its share of the sessions over as
-- many connections; an answer is matched to its session by the session's CSRF value in the
-- body (constant for a session). (One thread per session, as before, cost the client ~20 %
-- more CPU per request on this 2-core machine than the two threads of every other load.)
local sessions = {}
for line in string.gmatch(os.getenv("BENCH_SESSIONS"), "[^;]+") do
  local refresh, csrf = string.match(line, "([^,]+),([^,]+)")
  table.insert(sessions, {refresh = refresh, csrf = csrf})
end
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("index", counter)
end

init = function(args)
  local threads = tonumber(os.getenv("BENCH_THREADS") or "")
  assert(threads, "BENCH_THREADS must be the thread count given to wrk (-t)")
  ready, by_csrf = {}, {}
  for i = index, #sessions, threads do
    table.insert(ready, sessions[i])
    by_csrf[sessions[i].csrf] = sessions[i]
  end
  -- wrk calls request() once on its first thread before connecting, to check it: no send.
  checking = index == 1
end

-- A session whose answer carried no token (a refusal) is out of the loop; a connection
-- left without a session sends a request that is refused, and counts as non-2xx.
local spent = {refresh = "spent", csrf = "spent"}

request = function()
  local s
  if checking then
    checking, s = false, ready[1]
  else
    s = table.remove(ready, 1) or spent
  end
  return wrk.format("POST", nil, {
    ["Cookie"] = "refresh_token=" .. s.refresh .. "; csrf_refresh_token=" .. s.csrf,
    ["X-CSRF-TOKEN"] = s.csrf,
  })
end

-- wrk keeps one header per name: the service sends the refresh cookie last.
response = function(status, headers, body)
  local c = string.match(body or "", '"csrf_token":"([^"]+)"')
  local s = c and by_csrf[c]
  if s and status == 200 then
    s.refresh = string.match(headers["Set-Cookie"] or "", "^refresh_token=([^;]+)") or s.refresh
    table.insert(ready, s)
  end
end
