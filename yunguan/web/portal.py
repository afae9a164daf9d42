from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    pass
