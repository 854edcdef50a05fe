# Read by the `flask` command (python-dotenv). Real environment variables win.
FLASK_APP=trikchi
TRIKCHI_CONFIG=development
