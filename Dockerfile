# PathReview: the review app with the shipped model baked in.
#   App (default):  docker build -t pathreview .                 scores with ONNX Runtime, no TensorFlow
#   Full, CPU:      docker build --build-arg FULL=true -t pathreview:full .   + training and evaluation CLIs
#   Full, GPU:      docker build --build-arg GPU=true -t pathreview:gpu .     the same with tensorflow[and-cuda]
#   Run:            docker run -p 8501:8501 -v /path/to/pcam:/data:ro -v /path/to/slides:/slides:ro \
#                     -v pathreview-reviews:/audit pathreview
# BASE is any image with Python 3.11 and its venv module: the official python:3.11-slim (Python in /usr/local)
# or a plain Debian bookworm with python3.11 and python3-venv (Python in /usr/bin), as .ci/container builds.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG FULL=false
ARG GPU=false
# A venv works on both bases: Debian marks its own Python as externally managed.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PATHREVIEW_DATA=/data \
    PATHREVIEW_SLIDES=/slides \
    PATHREVIEW_DB_URL=sqlite:////audit/pathreview.db

WORKDIR /app
COPY requirements.txt requirements-app.txt ./
# The app image takes requirements-app.txt only: the shipped bundle's model.onnx is scored by ONNX Runtime, and
# TensorFlow would be about 1.5 GB of the image. The full images add requirements.txt's training stack, as
# tensorflow-cpu (same release, no CUDA kernels) or tensorflow[and-cuda]; TensorFlow's C++ headers (about
# 290 MB) serve only to compile custom ops, so they are dropped.
RUN python3 -m venv "$VIRTUAL_ENV" \
    && if [ "$GPU" = "true" ]; then tf="tensorflow[and-cuda]"; elif [ "$FULL" = "true" ]; then tf="tensorflow-cpu"; fi \
    && if [ -n "${tf:-}" ]; then sed "s/^tensorflow==/${tf}==/" requirements.txt > requirements-image.txt; \
       else cp requirements-app.txt requirements-image.txt; fi \
    && pip install --no-cache-dir -r requirements-image.txt \
    && rm -rf requirements-image.txt "$VIRTUAL_ENV"/lib/python3*/site-packages/tensorflow/include \
    && groupadd --gid 10001 pathreview \
    && useradd --create-home --uid 10001 --gid 10001 pathreview \
    && mkdir -p /data /slides /audit \
    && chown pathreview:pathreview /audit
COPY .streamlit/ .streamlit/
COPY model_training/ model_training/
COPY app/ app/
COPY assets/ assets/
# PYTHONDONTWRITEBYTECODE keeps Python from caching what it compiles, so the app's own modules are compiled
# here once rather than at every server start.
RUN python -m compileall -q app model_training

USER 10001:10001
VOLUME ["/data", "/audit"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "app/main.py", "--server.address=0.0.0.0", "--server.port=8501"]
