from yunguan.cli.main import app

app()
