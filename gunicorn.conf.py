# gunicorn reads this file from the working directory: its own log lines in Switchyard's format.
logger_class = "config.gunicorn_logger.StructuredLogger"
