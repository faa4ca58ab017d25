"""The Temporal side: contracts, workflows, activities and the client-side service facade."""
