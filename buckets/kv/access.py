"""What the bucket API's routes touch (``kvsite.access.guard``): a bucket by its public name, or its namespace.

A non-secret namespace keeps its entries in the bucket of its name (``APP_<name>``), so
the bucket API can name that bucket. Such a bucket is the namespace's: it is the resource
``namespace:<applicationId>/<name>``, so reading it here takes the namespace's scope (a
bucket scope never reaches it, whatever its glob), and writing it is refused
(``services.bucket_for_writes``): the namespaces API authorizes, checks and audits its entries.

An items account's bucket (``items-<account>``) is the resource ``items:<account>``: the
bucket API is an operator's view of it (reads and writes) under the account's scope, and
never creates one (``buckets.core.names.new_app_bucket``).
"""

from buckets.core.names import ITEMS_BUCKET_PREFIX, app_bucket, public_name
from buckets.models import Bucket, Namespace
from kvsite.access.guard import BUCKET, ITEMS, NAMESPACE, Call, Resource


def bucket_resource(*, name: str, owner: Namespace | None) -> Resource:
    """The resource of the user bucket ``name``: the bucket, the namespace ``owner`` that keeps its entries
    there, or the items account whose bucket it is (``items-<account>``)."""
    if owner is not None:
        return Resource(NAMESPACE, f"{owner.application_id}/{owner.name}")
    if name.startswith(ITEMS_BUCKET_PREFIX):
        return Resource(ITEMS, name[len(ITEMS_BUCKET_PREFIX) :])
    return Resource(BUCKET, name)


def bucket_named(call: Call) -> Resource:
    """The resolver of the routes under ``buckets/<bucket>``; a malformed name is the bucket API's 400."""
    name = str(call.kwargs["bucket"])
    owner = Namespace.objects.filter(bucket__name=app_bucket(name)).only("application_id", "name").first()
    return bucket_resource(name=name, owner=owner)


def bucket_row_resource(bucket: Bucket) -> Resource:
    """The resource of a listed user bucket, read with ``select_related("namespace")`` (no query per row)."""
    # The reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError, when no namespace owns the bucket.
    return bucket_resource(name=public_name(bucket.name), owner=getattr(bucket, "namespace", None))
