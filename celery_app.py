"""The Celery app for workers and beat: `celery -A celery_app worker` / `celery -A celery_app beat`."""

from webapp import create_app
from webapp.tasks import celery_init_app

flask_app = create_app()
app = celery_init_app(flask_app)
