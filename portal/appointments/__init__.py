"""1:1 appointments: clinicians' weekly availability, the slots generated from it, and patients' bookings."""
