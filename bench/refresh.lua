-- POST /auth/refresh_token as browsers do: each thread owns one session (one connection),
-- sends its cookie and CSRF header, and keeps the rotated cookie from every answer.
local sessions = {}
for line in string.gmatch(os.getenv("BENCH_SESSIONS"), "[^;]+") do
  local refresh, csrf = string.match(line, "([^,]+),([^,]+)")
  table.insert(sessions, {refresh = refresh, csrf = csrf})
end
local counter = 0
local threads = {}

setup = function(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

init = function(args)
  local s = sessions[index]
  refresh_cookie, csrf = s.refresh, s.csrf
end

request = function()
  return wrk.format("POST", nil, {
    ["Cookie"] = "refresh_token=" .. refresh_cookie .. "; csrf_refresh_token=" .. csrf,
    ["X-CSRF-TOKEN"] = csrf,
  })
end

-- wrk keeps one header per name: the service sends the refresh cookie last, and the
-- new CSRF value is in the body.
response = function(status, headers, body)
  local r = string.match(headers["Set-Cookie"] or "", "^refresh_token=([^;]+)")
  local c = string.match(body or "", '"csrf_token":"([^"]+)"')
  if r then refresh_cookie = r end
  if c then csrf = c end
end
