"""What every test shares: a layout cache of its own (never the user's ~/.cache)."""
import pytest


@pytest.fixture(scope="session", autouse=True)
def _layout_cache_of_the_session(tmp_path_factory):
    """Servers and kernels the tests start (module-scoped fixtures too) never use ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BPV_LAYOUT_CACHE", str(tmp_path_factory.mktemp("layout-cache")))
        yield


@pytest.fixture(autouse=True)
def _layout_cache_of_the_test(tmp_path_factory, monkeypatch):
    """Each test its own empty layout cache: no test depends on what another one laid out."""
    monkeypatch.setenv("BPV_LAYOUT_CACHE", str(tmp_path_factory.mktemp("layout-cache")))
