//! The two macros behind mmlab's flag-set types (GFP flags, slab flags, page-table entry
//! flags): named single-bit constants, and the set operations, written once.

/// Single-bit constants of a flag type wrapping an integer: `Type: NAME = bit; ...`.
macro_rules! flag_bits {
    ($ty:ident: $($(#[$m:meta])* $name:ident = $bit:expr;)*) => {
        impl $ty { $($(#[$m])* pub const $name: $ty = $ty(1 << $bit);)* }
    };
}
pub(crate) use flag_bits;

/// The set operations of a flag type `$ty` wrapping a `$repr`: `empty`, `bits`, `contains`,
/// `intersects`, `union`, `without` (all `const`) and `|`.
macro_rules! flag_set_ops {
    ($ty:ident, $repr:ty) => {
        impl $ty {
            /// No flag.
            pub const fn empty() -> $ty {
                $ty(0)
            }
            /// The raw bits.
            pub const fn bits(self) -> $repr {
                self.0
            }
            /// True when every flag of `other` is set.
            pub const fn contains(self, other: $ty) -> bool {
                self.0 & other.0 == other.0
            }
            /// True when any flag of `other` is set.
            pub const fn intersects(self, other: $ty) -> bool {
                self.0 & other.0 != 0
            }
            /// Both sets.
            pub const fn union(self, other: $ty) -> $ty {
                $ty(self.0 | other.0)
            }
            /// `self` without the flags of `other`.
            pub const fn without(self, other: $ty) -> $ty {
                $ty(self.0 & !other.0)
            }
        }

        impl std::ops::BitOr for $ty {
            type Output = $ty;
            fn bitor(self, rhs: $ty) -> $ty {
                self.union(rhs)
            }
        }

        impl std::ops::BitOrAssign for $ty {
            fn bitor_assign(&mut self, rhs: $ty) {
                *self = self.union(rhs);
            }
        }

        impl std::ops::BitAnd for $ty {
            type Output = $ty;
            fn bitand(self, rhs: $ty) -> $ty {
                $ty(self.0 & rhs.0)
            }
        }
    };
}
pub(crate) use flag_set_ops;
