"""AlterConfigs (key 33), versions 0-2.

Replaces a topic's whole set of overrides with the given configs (configs not named return to
their defaults), after validating every one (INVALID_CONFIG); ``validate_only`` checks only.
Changes apply to the partitions' logs at once and persist.

BROKER resources (this broker's id, or "" for the cluster-wide default) replace that dynamic
layer, checked as Kafka's DynamicBrokerConfig: a config that cannot change at run time is
INVALID_CONFIG "Invalid config value for resource ConfigResource(type=BROKER, name='1'): Cannot
update these configs dynamically: Set(...)", another broker's id INVALID_REQUEST
(:mod:`broker.handlers.broker_configs`). BROKER_LOGGER is INVALID_REQUEST, as Kafka (only
IncrementalAlterConfigs changes logger levels).

ZooKeeper mode (any broker, as Kafka's ZkAdminManager): the topic must exist in ZooKeeper; the
validated overrides replace ``/config/topics/<t>`` and a change notification tells every broker,
which applies them to its logs (:mod:`broker.cluster.config_changes`).

Authorization (an authorizer configured): ALTER_CONFIGS on a topic (TOPIC_AUTHORIZATION_FAILED) or,
for a broker, on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from functools import partial

from broker.handlers.base import Handler, RequestContext
from broker.handlers.broker_configs import alter_broker_configs
from broker.handlers.configs_common import RESOURCE_BROKER, alter_resource, alter_resource_async
from broker.security.authz import Op, config_refusal
from protocol.messages.alter_configs_request import AlterConfigsRequest
from protocol.messages.alter_configs_response import AlterConfigsResourceResponse, AlterConfigsResponse

API_KEY = 33


async def handle(ctx: RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse:
    responses: list[AlterConfigsResourceResponse] = []
    for resource in request.resources:
        out = AlterConfigsResourceResponse(
            error_code=0,
            error_message=None,
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
        )
        refused = config_refusal(ctx, resource.resource_type, resource.resource_name, Op.ALTER_CONFIGS)
        if refused is not None:
            out.error_code, out.error_message = refused, None
            responses.append(out)
            continue
        configs = {c.name: c.value for c in resource.configs}
        if resource.resource_type == RESOURCE_BROKER:
            out.error_code, out.error_message = await alter_broker_configs(
                ctx, resource.resource_name, lambda _current, new=configs: new, request.validate_only
            )
            responses.append(out)
            continue
        admin = ctx.broker.zk_admin
        if admin is not None:
            zk_change = partial(
                admin.set_topic_config, resource.resource_name, configs, validate_only=request.validate_only
            )
            out.error_code, out.error_message = await alter_resource_async(resource.resource_type, zk_change)
            responses.append(out)
            continue
        change = partial(
            ctx.broker.topics.set_configs,
            resource.resource_name,
            configs,
            validate_only=request.validate_only,
        )
        out.error_code, out.error_message = alter_resource(resource.resource_type, change)
        responses.append(out)
    # The changed metadata is written (in a disk worker) before the answer.
    await ctx.broker.persist_metadata()
    return AlterConfigsResponse(throttle_time_ms=0, responses=responses)


HANDLER = Handler(API_KEY, 0, 2, handle)
