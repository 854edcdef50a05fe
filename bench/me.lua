-- GET with a different user's token on each request: the tokens of BENCH_TOKENS_FILE (one per
-- line) in turn, each wrk thread starting at its own place in the list, so no single user row
-- or token is hot (as in production, many users at once). The token goes in the header
-- BENCH_AUTH_HEADER (Authorization) after BENCH_AUTH_PREFIX ("Bearer "). The requests are built
-- once per thread, so the client costs about what a static wrk request does.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
  if line ~= "" then table.insert(tokens, line) end
end
local header = os.getenv("BENCH_AUTH_HEADER") or "Authorization"
local prefix = os.getenv("BENCH_AUTH_PREFIX") or "Bearer "
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("position", counter * 7)
end

init = function(args)
  prepared = {}
  for i, token in ipairs(tokens) do
    prepared[i] = wrk.format("GET", nil, {[header] = prefix .. token})
  end
end

request = function()
  position = position % #prepared + 1
  return prepared[position]
end
