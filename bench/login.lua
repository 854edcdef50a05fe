-- POST /auth/login with the right password.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_LOGIN_BODY")
