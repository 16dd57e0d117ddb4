import pytest

from credentials.services import CredentialNotConfigured, credential_create, credential_resolve
from customers.models import Customer

# Scopes a credential may have; each table row names the ones that exist and which one a
# customer in region eu, tier premium (acme) must be served by.
SCOPES = {
    "customer": {"customer": "acme"},
    "eu+premium": {"region": "eu", "tier": "premium"},
    "eu": {"region": "eu"},
    "premium": {"tier": "premium"},
    "global": {},
    "eu+standard": {"region": "eu", "tier": "standard"},
    "standard": {"tier": "standard"},
    "us": {"region": "us"},
    "us+premium": {"region": "us", "tier": "premium"},
    "us cross-region": {"region": "us", "allow_cross_region": True},
    "us+premium cross-region": {"region": "us", "tier": "premium", "allow_cross_region": True},
    "other customer": {"customer": "initech"},
}

TABLE = [
    (["customer", "eu+premium", "eu", "premium", "global"], "customer"),
    (["eu+premium", "eu", "premium", "global"], "eu+premium"),
    (["eu", "premium", "global"], "eu"),
    (["premium", "global"], "premium"),
    (["global"], "global"),
    (["global", "eu+standard", "standard"], "global"),
    (["eu+standard", "eu"], "eu"),
    (["eu+standard", "standard", "us", "us+premium", "other customer"], None),
    (["us", "us+premium"], None),
    (["us cross-region"], "us cross-region"),
    (["us cross-region", "global"], "global"),
    (["us cross-region", "premium"], "premium"),
    (["us cross-region", "us+premium cross-region"], "us+premium cross-region"),
    (["us cross-region", "eu"], "eu"),
]


@pytest.fixture
def customers(acme, region_eu, region_us):
    initech = Customer.objects.create(slug="initech", name="Initech", region=region_eu)
    return {"acme": acme, "initech": initech}


def _create(name, customers, regions):
    scope = dict(SCOPES[name])
    if "customer" in scope:
        scope["customer"] = customers[scope["customer"]]
    if "region" in scope:
        scope["region"] = regions[scope["region"]]
    return credential_create(
        provider="trello",
        purpose="api",
        label=name,
        fields={"api_key": name, "token": "t"},
        **scope,
    )


@pytest.mark.parametrize(("existing", "expected"), TABLE, ids=[" / ".join(r[0]) for r in TABLE])
def test_resolution_order(existing, expected, customers, region_eu, region_us):
    regions = {"eu": region_eu, "us": region_us}
    created = {name: _create(name, customers, regions) for name in existing}
    if expected is None:
        with pytest.raises(CredentialNotConfigured) as failure:
            credential_resolve(provider="trello", customer=customers["acme"])
        assert failure.value.retryable is False
        assert all(word in str(failure.value) for word in ("trello", "'acme'", "'eu'"))
        return
    resolved = credential_resolve(provider="trello", customer=customers["acme"])
    assert resolved.credential_id == created[expected].pk
    assert resolved.fields == {"api_key": expected, "token": "t"}
    assert resolved.version == 1


def test_purpose_and_provider_must_match(trello_acme, acme):
    with pytest.raises(CredentialNotConfigured, match="webhook_signing"):
        credential_resolve(provider="trello", customer=acme, purpose="webhook_signing")
    with pytest.raises(CredentialNotConfigured, match="miro"):
        credential_resolve(provider="miro", customer=acme)


def test_revoked_credential_no_longer_resolves(trello_acme, acme):
    from credentials.services import credential_revoke

    credential_revoke(credential=trello_acme, include_current=True)
    with pytest.raises(CredentialNotConfigured):
        credential_resolve(provider="trello", customer=acme)


def test_resolved_credential_repr_hides_fields(trello_acme, acme):
    resolved = credential_resolve(provider="trello", customer=acme)
    assert "t" * 64 not in repr(resolved)
    assert "fields" not in repr(resolved)
