# PathReview: the review app with the shipped model baked in.
#   CPU (default):  docker build -t pathreview .
#   GPU:            docker build --build-arg GPU=true -t pathreview:gpu .
#   Run:            docker run -p 8501:8501 -v /path/to/pcam:/data:ro -v pathreview-audit:/audit pathreview
FROM python:3.11-slim

ARG GPU=false
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATHREVIEW_DATA=/data \
    PATHREVIEW_AUDIT_LOG=/audit/pathreview_audit.csv

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && if [ "$GPU" = "true" ]; then pip install --no-cache-dir "tensorflow[and-cuda]==2.21.0"; fi

RUN groupadd --gid 10001 pathreview \
    && useradd --create-home --uid 10001 --gid 10001 pathreview \
    && mkdir -p /data /audit \
    && chown pathreview:pathreview /audit
COPY .streamlit/ .streamlit/
COPY model_training/ model_training/
COPY app/ app/
COPY assets/ assets/

USER 10001:10001
VOLUME ["/data", "/audit"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "app/main.py", "--server.address=0.0.0.0", "--server.port=8501"]
