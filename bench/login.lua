-- POST a sign-in with the right password: BENCH_LOGIN_BODY, of type BENCH_LOGIN_TYPE (JSON
-- unless said otherwise; fastapi-users takes an OAuth2 password form).
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_LOGIN_TYPE") or "application/json"
wrk.body = os.getenv("BENCH_LOGIN_BODY")
