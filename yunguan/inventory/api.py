"""REST: /regions, /zones, /pods, /clusters, /hosts, /storage-pools and their capacity."""

from fastapi import APIRouter

from yunguan.core.api import ResourceId, problem_responses
from yunguan.core.deps import DbSession
from yunguan.identity.crud import Collection, add_collection
from yunguan.identity.deps import CurrentPrincipal
from yunguan.inventory import schemas, service
from yunguan.scheduler import service as scheduler

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))

COLLECTIONS = [
    Collection(
        "region",
        "/regions",
        schemas.RegionOut,
        schemas.RegionCreate,
        schemas.RegionUpdate,
        service.list_regions,
        service.create_region,
        service.get_region,
        service.update_region,
        service.delete_region,
        filters=("name",),
    ),
    Collection(
        "zone",
        "/zones",
        schemas.ZoneOut,
        schemas.ZoneCreate,
        schemas.ZoneUpdate,
        service.list_zones,
        service.create_zone,
        service.get_zone,
        service.update_zone,
        service.delete_zone,
        filters=("region_id", "name", "visibility"),
    ),
    Collection(
        "pod",
        "/pods",
        schemas.PodOut,
        schemas.PodCreate,
        schemas.PodUpdate,
        service.list_pods,
        service.create_pod,
        service.get_pod,
        service.update_pod,
        service.delete_pod,
        filters=("zone_id", "name"),
    ),
    Collection(
        "cluster",
        "/clusters",
        schemas.ClusterOut,
        schemas.ClusterCreate,
        schemas.ClusterUpdate,
        service.list_clusters,
        service.create_cluster,
        service.get_cluster,
        service.update_cluster,
        service.delete_cluster,
        filters=("pod_id", "zone_id", "hypervisor", "name"),
    ),
    Collection(
        "host",
        "/hosts",
        schemas.HostOut,
        schemas.HostCreate,
        schemas.HostUpdate,
        service.list_hosts,
        service.create_host,
        service.get_host,
        service.update_host,
        service.delete_host,
        filters=("cluster_id", "pod_id", "zone_id", "region_id", "state", "name"),
    ),
    Collection(
        "storage-pool",
        "/storage-pools",
        schemas.StoragePoolOut,
        schemas.StoragePoolCreate,
        schemas.StoragePoolUpdate,
        service.list_pools,
        service.create_pool,
        service.get_pool,
        service.update_pool,
        service.delete_pool,
        filters=("zone_id", "cluster_id", "kind", "name"),
    ),
]
for collection in COLLECTIONS:
    add_collection(router, collection)


def _capacity_route(level: str) -> None:
    @router.get(
        f"/{level}s/{{item_id}}/capacity",
        response_model=schemas.CapacityOut,
        tags=[f"{level}s"],
        name=f"{level}.capacity",
        summary=f"Capacity of a {level}, per resource, with its children's",
    )
    def capacity(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId) -> dict:
        return service.capacity(session, principal, level, item_id)


for _level in service.LEVELS:
    _capacity_route(_level)


@router.post(
    "/storage-pools/{item_id}/actions",
    response_model=schemas.StoragePoolOut,
    tags=["storage-pools"],
    name="storage-pool.refresh",
)
def pool_action(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.StoragePoolAction,
):
    return scheduler.refresh_pool_by_request(session, principal, item_id)
