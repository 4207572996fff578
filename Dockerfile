# roadwatch: one image for the producer, the indexer and the API (`roadwatch <command>`).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint constraints.txt .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home roadwatch
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER roadwatch
ENV LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
# 8000: the API and dashboard; 9400: the indexer's /metrics, /healthz, /readyz.
EXPOSE 8000 9400
ENTRYPOINT ["roadwatch"]
CMD ["api", "--host", "0.0.0.0"]
