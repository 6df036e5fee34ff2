"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 15:06:29.598548
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('networks',
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_networks')),
    sa.UniqueConstraint('name', name=op.f('uq_networks_name'))
    )
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_networks_lastupdated'), ['lastupdated'], unique=False)

    op.create_table('nodes',
    sa.Column('hostname', sa.String(length=200), nullable=True),
    sa.Column('cpus', sa.Integer(), nullable=True),
    sa.Column('load', sa.Double(), nullable=True),
    sa.Column('memory', sa.BigInteger(), nullable=True),
    sa.Column('disk', sa.BigInteger(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nodes')),
    sa.UniqueConstraint('name', name=op.f('uq_nodes_name'))
    )
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nodes_lastupdated'), ['lastupdated'], unique=False)

    op.create_table('processors',
    sa.Column('module', sa.String(length=200), nullable=False),
    sa.Column('hostname', sa.String(length=200), nullable=True),
    sa.Column('workers', sa.Integer(), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.Column('gitrepo', sa.Text(), nullable=False),
    sa.Column('branch', sa.String(length=200), nullable=True),
    sa.Column('commit', sa.String(length=64), nullable=True),
    sa.Column('beat', sa.Boolean(), nullable=False),
    sa.Column('requirements', sa.Text(), nullable=True),
    sa.Column('requested_status', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processors')),
    sa.UniqueConstraint('name', name=op.f('uq_processors_name'))
    )
    with op.batch_alter_table('processors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processors_lastupdated'), ['lastupdated'], unique=False)

    op.create_table('queues',
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('durable', sa.Boolean(), nullable=False),
    sa.Column('message_ttl', sa.Integer(), nullable=True),
    sa.Column('expires', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queues')),
    sa.UniqueConstraint('name', name=op.f('uq_queues_name'))
    )
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_queues_lastupdated'), ['lastupdated'], unique=False)

    op.create_table('roles',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('name', name=op.f('uq_roles_name'))
    )
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roles_lastupdated'), ['lastupdated'], unique=False)

    op.create_table('schedulers',
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('interval', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedulers')),
    sa.UniqueConstraint('name', name=op.f('uq_schedulers_name'))
    )
    with op.batch_alter_table('schedulers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedulers_lastupdated'), ['lastupdated'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('module', sa.String(length=200), nullable=False),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('module', 'name', name=op.f('uq_tasks_module_name'))
    )
    op.create_table('users',
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=300), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_lastupdated'), ['lastupdated'], unique=False)

    op.create_table('agents',
    sa.Column('node_id', sa.String(length=36), nullable=False),
    sa.Column('hostname', sa.String(length=200), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_agents_node_id_nodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('name', name=op.f('uq_agents_name'))
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agents_lastupdated'), ['lastupdated'], unique=False)
        batch_op.create_index(batch_op.f('ix_agents_node_id'), ['node_id'], unique=False)

    op.create_table('arguments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=True),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_arguments_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arguments')),
    sa.UniqueConstraint('task_id', 'position', name=op.f('uq_arguments_task_id_position'))
    )
    op.create_table('deployments',
    sa.Column('processor_id', sa.String(length=36), nullable=False),
    sa.Column('hostname', sa.String(length=200), nullable=False),
    sa.Column('cpus', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['processor_id'], ['processors.id'], name=op.f('fk_deployments_processor_id_processors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments')),
    sa.UniqueConstraint('name', name=op.f('uq_deployments_name'))
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployments_lastupdated'), ['lastupdated'], unique=False)
        batch_op.create_index(batch_op.f('ix_deployments_processor_id'), ['processor_id'], unique=False)

    op.create_table('network_nodes',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('node_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_network_nodes_network_id_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_network_nodes_node_id_nodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_id', 'node_id', name=op.f('pk_network_nodes'))
    )
    op.create_table('privileges',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('right', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('role_id', sa.String(length=36), nullable=True),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.CheckConstraint('(user_id IS NULL) <> (role_id IS NULL)', name=op.f('ck_privileges_one_grantee')),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_privileges_role_id_roles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_privileges_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privileges')),
    sa.UniqueConstraint('right', 'user_id', 'role_id', name=op.f('uq_privileges_right_user_id_role_id'))
    )
    with op.batch_alter_table('privileges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privileges_role_id'), ['role_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_privileges_user_id'), ['user_id'], unique=False)

    op.create_table('scheduler_nodes',
    sa.Column('scheduler_id', sa.String(length=36), nullable=False),
    sa.Column('node_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_scheduler_nodes_node_id_nodes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scheduler_id'], ['schedulers.id'], name=op.f('fk_scheduler_nodes_scheduler_id_schedulers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('scheduler_id', 'node_id', name=op.f('pk_scheduler_nodes'))
    )
    op.create_table('sockets',
    sa.Column('processor_id', sa.String(length=36), nullable=False),
    sa.Column('queue_id', sa.String(length=36), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('interval', sa.Integer(), nullable=True),
    sa.Column('cron', sa.String(length=120), nullable=True),
    sa.Column('wait', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['processor_id'], ['processors.id'], name=op.f('fk_sockets_processor_id_processors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_sockets_queue_id_queues'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_sockets_task_id_tasks'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sockets')),
    sa.UniqueConstraint('name', name=op.f('uq_sockets_name'))
    )
    with op.batch_alter_table('sockets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sockets_lastupdated'), ['lastupdated'], unique=False)
        batch_op.create_index(batch_op.f('ix_sockets_processor_id'), ['processor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sockets_queue_id'), ['queue_id'], unique=False)

    op.create_table('user_roles',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('role_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_user_roles_role_id_roles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'role_id', name=op.f('pk_user_roles'))
    )
    op.create_table('plugs',
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('queue_id', sa.String(length=36), nullable=False),
    sa.Column('source_id', sa.String(length=36), nullable=False),
    sa.Column('target_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_plugs_queue_id_queues'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['source_id'], ['sockets.id'], name=op.f('fk_plugs_source_id_sockets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['sockets.id'], name=op.f('fk_plugs_target_id_sockets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plugs')),
    sa.UniqueConstraint('name', name=op.f('uq_plugs_name'))
    )
    with op.batch_alter_table('plugs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plugs_lastupdated'), ['lastupdated'], unique=False)
        batch_op.create_index(batch_op.f('ix_plugs_queue_id'), ['queue_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plugs_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plugs_target_id'), ['target_id'], unique=False)

    op.create_table('workers',
    sa.Column('agent_id', sa.String(length=36), nullable=False),
    sa.Column('processor_id', sa.String(length=36), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('commit', sa.String(length=64), nullable=True),
    sa.Column('workdir', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_workers_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['processor_id'], ['processors.id'], name=op.f('fk_workers_processor_id_processors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers')),
    sa.UniqueConstraint('name', name=op.f('uq_workers_name'))
    )
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workers_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workers_lastupdated'), ['lastupdated'], unique=False)
        batch_op.create_index(batch_op.f('ix_workers_processor_id'), ['processor_id'], unique=False)

    op.create_table('calls',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('socket_id', sa.String(length=36), nullable=True),
    sa.Column('plug_id', sa.String(length=36), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('parent', sa.String(length=36), nullable=True),
    sa.Column('taskparent', sa.String(length=36), nullable=True),
    sa.Column('tracking', sa.String(length=36), nullable=True),
    sa.Column('resultkey', sa.String(length=120), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started', sa.DateTime(), nullable=True),
    sa.Column('finished', sa.DateTime(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plug_id'], ['plugs.id'], name=op.f('fk_calls_plug_id_plugs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['socket_id'], ['sockets.id'], name=op.f('fk_calls_socket_id_sockets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls'))
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_lastupdated'), ['lastupdated'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_parent'), ['parent'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_socket_id'), ['socket_id'], unique=False)
        batch_op.create_index('ix_calls_socket_started', ['socket_id', 'started'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_started'), ['started'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_tracking'), ['tracking'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('lastupdated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_events_call_id_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_call_id'), ['call_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_call_id'))

    op.drop_table('events')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_tracking'))
        batch_op.drop_index(batch_op.f('ix_calls_state'))
        batch_op.drop_index(batch_op.f('ix_calls_started'))
        batch_op.drop_index('ix_calls_socket_started')
        batch_op.drop_index(batch_op.f('ix_calls_socket_id'))
        batch_op.drop_index(batch_op.f('ix_calls_parent'))
        batch_op.drop_index(batch_op.f('ix_calls_name'))
        batch_op.drop_index(batch_op.f('ix_calls_lastupdated'))

    op.drop_table('calls')
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workers_processor_id'))
        batch_op.drop_index(batch_op.f('ix_workers_lastupdated'))
        batch_op.drop_index(batch_op.f('ix_workers_agent_id'))

    op.drop_table('workers')
    with op.batch_alter_table('plugs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plugs_target_id'))
        batch_op.drop_index(batch_op.f('ix_plugs_source_id'))
        batch_op.drop_index(batch_op.f('ix_plugs_queue_id'))
        batch_op.drop_index(batch_op.f('ix_plugs_lastupdated'))

    op.drop_table('plugs')
    op.drop_table('user_roles')
    with op.batch_alter_table('sockets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sockets_queue_id'))
        batch_op.drop_index(batch_op.f('ix_sockets_processor_id'))
        batch_op.drop_index(batch_op.f('ix_sockets_lastupdated'))

    op.drop_table('sockets')
    op.drop_table('scheduler_nodes')
    with op.batch_alter_table('privileges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privileges_user_id'))
        batch_op.drop_index(batch_op.f('ix_privileges_role_id'))

    op.drop_table('privileges')
    op.drop_table('network_nodes')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_processor_id'))
        batch_op.drop_index(batch_op.f('ix_deployments_lastupdated'))

    op.drop_table('deployments')
    op.drop_table('arguments')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_node_id'))
        batch_op.drop_index(batch_op.f('ix_agents_lastupdated'))

    op.drop_table('agents')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_lastupdated'))

    op.drop_table('users')
    op.drop_table('tasks')
    with op.batch_alter_table('schedulers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedulers_lastupdated'))

    op.drop_table('schedulers')
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roles_lastupdated'))

    op.drop_table('roles')
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_queues_lastupdated'))

    op.drop_table('queues')
    with op.batch_alter_table('processors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processors_lastupdated'))

    op.drop_table('processors')
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nodes_lastupdated'))

    op.drop_table('nodes')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_networks_lastupdated'))

    op.drop_table('networks')
