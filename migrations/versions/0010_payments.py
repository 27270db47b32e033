"""payments

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 07:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('gateway_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('gateway', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('secret_key', sa.Text(), nullable=True),
    sa.Column('webhook_secret', sa.Text(), nullable=True),
    sa.Column('client_key', sa.String(length=200), nullable=True),
    sa.Column('production', sa.Boolean(), nullable=False),
    sa.Column('api_base', sa.String(length=300), nullable=True),
    sa.Column('instructions', sa.Text(), nullable=False),
    sa.Column('bank_accounts', sa.Text(), nullable=False),
    sa.Column('qris_image', sa.LargeBinary(), nullable=True),
    sa.Column('min_amount', sa.BigInteger(), nullable=True),
    sa.Column('max_amount', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("gateway IN ('stripe', 'midtrans', 'manual')", name=op.f('ck_gateway_accounts_known_gateway')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_gateway_accounts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_accounts')),
    sa.UniqueConstraint('owner', 'gateway', name='uq_gateway_accounts_owner_gateway')
    )
    with op.batch_alter_table('gateway_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_accounts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('topups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('gateway', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('payment_ref', sa.String(length=200), nullable=True),
    sa.Column('payment_method', sa.String(length=40), nullable=True),
    sa.Column('checkout_url', sa.String(length=1000), nullable=True),
    sa.Column('refunded_amount', sa.BigInteger(), nullable=False),
    sa.Column('disputed_amount', sa.BigInteger(), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('proof', sa.LargeBinary(), nullable=True),
    sa.Column('proof_type', sa.String(length=40), nullable=True),
    sa.Column('claimed_amount', sa.BigInteger(), nullable=True),
    sa.Column('reviewed_by', sa.String(length=254), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("gateway IN ('stripe', 'midtrans', 'manual')", name=op.f('ck_topups_known_gateway')),
    sa.CheckConstraint("state IN ('pending', 'paid', 'failed', 'expired', 'refunded', 'disputed')", name=op.f('ck_topups_known_state')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_topups_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_topups_customer_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_topups_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topups')),
    sa.UniqueConstraint('gateway', 'external_id', name='uq_topups_gateway_external_id')
    )
    with op.batch_alter_table('topups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_topups_payment_ref'), ['payment_ref'], unique=False)
        batch_op.create_index('ix_topups_state_created', ['state', 'created_at'], unique=False)
        batch_op.create_index('ix_topups_wallet', ['tenant_id', 'customer_id', 'id'], unique=False)

    op.create_table('gateway_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('receiver', sa.String(length=32), nullable=False),
    sa.Column('gateway', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=80), nullable=False),
    sa.Column('topup_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_gateway_events_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topup_id'], ['topups.id'], name=op.f('fk_gateway_events_topup_id_topups'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_events')),
    sa.UniqueConstraint('receiver', 'gateway', 'event_id', name='uq_gateway_events_once')
    )
    with op.batch_alter_table('gateway_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_events_tenant_id'), ['tenant_id'], unique=False)



def downgrade():
    with op.batch_alter_table('gateway_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_events_tenant_id'))

    op.drop_table('gateway_events')
    with op.batch_alter_table('topups', schema=None) as batch_op:
        batch_op.drop_index('ix_topups_wallet')
        batch_op.drop_index('ix_topups_state_created')
        batch_op.drop_index(batch_op.f('ix_topups_payment_ref'))

    op.drop_table('topups')
    with op.batch_alter_table('gateway_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_accounts_tenant_id'))

    op.drop_table('gateway_accounts')
