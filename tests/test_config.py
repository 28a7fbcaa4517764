from config import REAL_WECOM_API_BASE, Config


def test_from_env_reads_known_variables():
    """Does Config.from_env read every documented variable and convert integers?"""
    cfg = Config.from_env(
        {
            "DATABASE_URL": "postgresql://x/y",
            "REDIS_URL": "redis://h:1/2",
            "WECOM_CORP_ID": "wwcorp",
            "API_TOKEN_TTL": "60",
            "UNRELATED": "ignored",
        }
    )
    assert cfg.DATABASE_URL == "postgresql://x/y"
    assert cfg.REDIS_URL == "redis://h:1/2"
    assert cfg.WECOM_CORP_ID == "wwcorp"
    assert cfg.API_TOKEN_TTL == 60


def test_defaults_point_at_real_wecom():
    """Without overrides, does the client talk to the real WeCom base?"""
    assert Config.from_env({}).WECOM_API_BASE == REAL_WECOM_API_BASE


def test_extra_settings_reach_flask_config():
    """Do EXTRA settings land on app.config?"""
    assert Config(EXTRA={"FOO": 1}).as_flask_config()["FOO"] == 1
