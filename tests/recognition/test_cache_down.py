"""With the cache (Redis) stopped, the HIS still gets its prompt: answered from the database and
the platform, marked degraded; the embedded page still opens. Never a 500."""

import json

import pytest
from django.urls import reverse

from .conftest import ITEMS, TOKEN, prompt_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_on_private_redis(settings, private_redis):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    return private_redis


def post(client, name, body):
    return client.post(
        reverse(f"recognition:{name}"),
        json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )


def test_with_redis_stopped_the_prompt_api_answers_from_the_platform_and_says_it_is_degraded(
    client, recognition, patient, cache_on_private_redis
):
    assert post(client, "api-events", prompt_body(patient, ITEMS)).status_code == 202
    assert post(client, "api-prompt", prompt_body(patient, ITEMS)).json()["source"] == "platform"
    assert (
        post(client, "api-prompt", prompt_body(patient, ITEMS)).json()["source"] == "cache"
    )  # kept in Redis

    cache_on_private_redis.stop()
    r = post(client, "api-prompt", prompt_body(patient, ITEMS))

    assert r.status_code == 200, r.content
    answer = r.json()
    assert answer["source"] == "platform" and answer["anyRecognizable"] and answer["promptUrl"]
    assert answer["degraded"]["cache"] is False and "缓存" in answer["degraded"]["message"]
    page = client.get(answer["promptUrl"].replace("http://testserver", ""))
    assert page.status_code == 200 and "胸部CT" in page.content.decode()
    other = {**patient, "visitId": patient["visitId"] + "X"}  # a new visit registered during the outage
    assert post(client, "api-events", prompt_body(other, ITEMS)).status_code == 202
